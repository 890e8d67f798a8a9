/* ctrl_analysis.c — the AnalysisRun controller (Argo Rollouts' analysis
 * controller, v1.6 semantics): measures each metric of a run through its
 * provider (web, prometheus, v6), judges measurements with the conditions
 * (analysis_expr.c), keeps counters and the last 10 measurements per metric
 * in status, and ends the run Successful, Failed, Error or Inconclusive.
 * arun_decide() is the pure decision; the adapter below puts it on the
 * controller core, whose ctrl_queue_work() runs the web and prometheus
 * providers (libcurl on the thread pool, never on the loop) and syncs the
 * run again with their outcome. Started by server.c; Rollouts create the
 * runs. */
#include "analysis.h"
#include "ctrl.h"
#include "log.h"
#include "obs_traffic.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AN_COMPONENT "analysis-controller"
#define AN_KEEP_MEASUREMENTS 10		/* Argo's default measurement retention */
#define AN_ERROR_RETRY_MS 10000		/* Argo's DefaultErrorRetryInterval */
#define AN_DEFAULT_ERROR_LIMIT 4	/* consecutiveErrorLimit */
#define AN_DEFAULT_TIMEOUT_S 10		/* web / prometheus, when not given */
#define AN_MAX_BODY (4u << 20)
#define AN_V6_DEFAULT_WINDOW "30s"

/* ---- small helpers ------------------------------------------------------ */

/* RFC 3339 with milliseconds ("2026-01-02T03:04:05.678Z"): metav1.Time
 * readers accept the fraction, and 1 s intervals need it. */
static json_t *
ts_json(int64_t ms)
{
	char b[32], out[48];
	time_format_rfc3339((time_t)(ms / 1000), b);
	b[strlen(b) - 1] = '\0';	/* drop the Z */
	snprintf(out, sizeof out, "%s.%03dZ", b, (int)(ms % 1000));
	return json_string(out);
}

/* Shortest "%g" that reads back the same double. */
static char *
fmt_number(double d)
{
	char b[64];
	for (int prec = 6; prec <= 17; prec++) {
		snprintf(b, sizeof b, "%.*g", prec, d);
		if (strtod(b, NULL) == d)
			break;
	}
	return xstrdup(b);
}

/* The status "value" of a result: strings as they are, numbers shortest,
 * anything else compact JSON. */
static char *
fmt_value(const json_t *v)
{
	if (!v)
		return xstrdup("");
	if (json_is_string(v))
		return xstrdup(json_string_value(v));
	if (json_is_number(v))
		return fmt_number(json_number_value(v));
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
	return s ? s : xstrdup("");
}

/* ---- {{args.NAME}} ------------------------------------------------------ */

static const json_t *
arg_find(const json_t *args, const char *name, size_t n)
{
	size_t i;
	json_t *a;
	json_array_foreach(args, i, a) {
		const char *an = obj_str(a, "name");
		if (strlen(an) == n && strncmp(an, name, n) == 0)
			return a;
	}
	return NULL;
}

int
arun_subst_args(const char *s, const json_t *args, char **out, char **err)
{
	static const char tag[] = "{{args.";
	struct buf b = BUF_INIT;
	const char *p = s;
	buf_puts(&b, "");
	for (;;) {
		const char *open = strstr(p, tag);
		const char *close = open ? strstr(open, "}}") : NULL;
		if (!close) {
			buf_puts(&b, p);
			break;
		}
		buf_append(&b, p, (size_t)(open - p));
		const char *name = open + sizeof tag - 1;
		const json_t *a = arg_find(args, name, (size_t)(close - name));
		const json_t *val = json_object_get(a, "value");
		if (!json_is_string(val)) {
			*err = xasprintf("failed to resolve {{args.%.*s}}%s", (int)(close - name),
			    name, a ? ": the arg has no value" : "");
			buf_free(&b);
			return -ENOENT;
		}
		buf_puts(&b, json_string_value(val));
		p = close + 2;
	}
	*out = buf_steal(&b);
	return 0;
}

/* A deep copy of v with args substituted in every string; NULL with *err. */
static json_t *
subst_json(const json_t *v, const json_t *args, char **err)
{
	if (json_is_string(v)) {
		char *s = NULL;
		if (arun_subst_args(json_string_value(v), args, &s, err) < 0)
			return NULL;
		json_t *r = json_string(s);
		free(s);
		return r;
	}
	if (json_is_array(v)) {
		json_t *r = json_array(), *x;
		size_t i;
		json_array_foreach(v, i, x) {
			json_t *y = subst_json(x, args, err);
			if (!y) {
				json_decref(r);
				return NULL;
			}
			json_array_append_new(r, y);
		}
		return r;
	}
	if (json_is_object(v)) {
		json_t *r = json_object(), *x;
		const char *k;
		json_object_foreach((json_t *)v, k, x) {
			json_t *y = subst_json(x, args, err);
			if (!y) {
				json_decref(r);
				return NULL;
			}
			json_object_set_new(r, k, y);
		}
		return r;
	}
	return json_deep_copy(v);
}

/* ---- measurements ------------------------------------------------------- */

const char *
arun_measurement_phase(const json_t *metric, const struct arun_outcome *o, char **msg)
{
	if (msg)
		*msg = NULL;
	if (o->kind == ARUN_ERROR) {
		if (msg)
			*msg = xstrdup(o->message ? o->message : "measurement failed");
		return "Error";
	}
	if (o->kind == ARUN_NODATA) {
		if (msg)
			*msg = xstrdup(o->message ? o->message : "no data");
		return "Inconclusive";
	}
	static const char *const keys[2] = { "successCondition", "failureCondition" };
	bool val[2] = { false, false }, has[2];
	for (int i = 0; i < 2; i++) {
		const char *expr = json_string_value(json_object_get(metric, keys[i]));
		has[i] = expr && *expr;
		char *err = NULL;
		if (has[i] && aexpr_eval_bool(expr, o->result, &val[i], &err) < 0) {
			if (msg)
				*msg = xasprintf("%s: %s", keys[i], err ? err : "cannot evaluate");
			free(err);
			return "Error";
		}
	}
	if (!has[0] && !has[1])
		return "Successful";
	if (has[0] && !has[1])
		val[1] = !val[0];
	else if (!has[0] && has[1])
		val[0] = !val[1];
	if (val[1])
		return "Failed";
	return val[0] ? "Successful" : "Inconclusive";
}

/* ---- the decision ------------------------------------------------------- */

/* A metric's settings, resolved and parsed. */
struct mconf {
	const json_t *m;		/* the resolved Metric */
	const char *name;
	int64_t interval_ms;		/* -1: none */
	int64_t delay_ms;
	json_int_t count;		/* -1: runs until terminated */
	json_int_t failure_limit, inconclusive_limit, error_limit;
};

static bool
phase_completed(const char *p)
{
	return !strcmp(p, "Successful") || !strcmp(p, "Failed") || !strcmp(p, "Error") ||
	    !strcmp(p, "Inconclusive");
}

static bool
phase_bad(const char *p)
{
	return !strcmp(p, "Failed") || !strcmp(p, "Error") || !strcmp(p, "Inconclusive");
}

/* Failed > Error > Inconclusive > Successful (Argo's order). */
static int
phase_rank(const char *p)
{
	static const char *const order[] = { "Successful", "Inconclusive", "Error", "Failed" };
	for (size_t i = 0; i < ARRAY_SIZE(order); i++)
		if (!strcmp(p, order[i]))
			return (int)i + 1;
	return 0;
}

/* An int-or-string setting; def when absent; -2 when malformed. */
static json_int_t
conf_int(const json_t *m, const char *key, json_int_t def)
{
	const json_t *v = json_object_get(m, key);
	if (!v)
		return def;
	if (json_is_integer(v))
		return json_integer_value(v) >= 0 ? json_integer_value(v) : -2;
	const char *s = json_string_value(v);
	char *end;
	long long n = s ? strtoll(s, &end, 10) : -1;
	return s && *s && !*end && n >= 0 ? (json_int_t)n : -2;
}

static int
conf_duration(const json_t *m, const char *key, int64_t *ms)
{
	const char *s = json_string_value(json_object_get(m, key));
	if (!s) {
		*ms = -1;
		return 0;
	}
	return duration_parse(s, ms);
}

/* Returns 0, or -EINVAL with *err (caller frees). */
static int
conf_parse(const json_t *m, struct mconf *c, char **err)
{
	memset(c, 0, sizeof *c);
	c->m = m;
	c->name = obj_str(m, "name");
	if (conf_duration(m, "interval", &c->interval_ms) < 0 ||
	    conf_duration(m, "initialDelay", &c->delay_ms) < 0) {
		*err = xasprintf("metric '%s': invalid interval or initialDelay", c->name);
		return -EINVAL;
	}
	if (c->delay_ms < 0)
		c->delay_ms = 0;
	/* Argo's EffectiveCount: no count and no interval is one measurement. */
	c->count = conf_int(m, "count", c->interval_ms < 0 ? 1 : -1);
	c->failure_limit = conf_int(m, "failureLimit", 0);
	c->inconclusive_limit = conf_int(m, "inconclusiveLimit", 0);
	c->error_limit = conf_int(m, "consecutiveErrorLimit", AN_DEFAULT_ERROR_LIMIT);
	if (c->count == -2 || c->failure_limit < 0 || c->inconclusive_limit < 0 ||
	    c->error_limit < 0) {
		*err = xasprintf("metric '%s': count and limits must be non-negative integers",
		    c->name);
		return -EINVAL;
	}
	return 0;
}

static json_t *
result_find(json_t *results, const char *name)
{
	size_t i;
	json_t *r;
	json_array_foreach(results, i, r)
		if (!strcmp(obj_str(r, "name"), name))
			return r;
	return NULL;
}

static json_t *
result_new(const char *name)
{
	return json_pack("{s:s, s:s, s:[], s:i, s:i, s:i, s:i, s:i, s:i}", "name", name,
	    "phase", "Pending", "measurements", "count", 0, "successful", 0, "failed", 0,
	    "inconclusive", 0, "error", 0, "consecutiveError", 0);
}

static void
counter_add(json_t *r, const char *key, json_int_t d)
{
	json_object_set_new(r, key, json_integer(obj_int_at(r, key, 0) + d));
}

/* Records one finished measurement in result r (Argo's counters: errors
 * are not counted in count; anything else resets consecutiveError). */
static void
result_record(json_t *r, const struct mconf *c, const struct arun_outcome *o)
{
	char *msg = NULL;
	const char *phase = arun_measurement_phase(c->m, o, &msg);
	json_t *meas = json_pack("{s:s, s:o, s:o}", "phase", phase,
	    "startedAt", ts_json(o->started_ms), "finishedAt", ts_json(o->finished_ms));
	if (o->kind == ARUN_OK) {
		char *v = o->value ? xstrdup(o->value) : fmt_value(o->result);
		json_object_set_new(meas, "value", json_string(v));
		free(v);
	}
	if (msg)
		json_object_set_new(meas, "message", json_string(msg));
	json_t *list = json_object_get(r, "measurements");
	if (!json_is_array(list)) {
		list = json_array();
		json_object_set_new(r, "measurements", list);
	}
	json_array_append_new(list, meas);
	while (json_array_size(list) > AN_KEEP_MEASUREMENTS)
		json_array_remove(list, 0);
	static const struct { const char *phase, *counter; } counters[] = {
		{ "Successful", "successful" }, { "Failed", "failed" },
		{ "Inconclusive", "inconclusive" }, { "Error", "error" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(counters); i++)
		if (!strcmp(phase, counters[i].phase))
			counter_add(r, counters[i].counter, 1);
	if (!strcmp(phase, "Error")) {
		counter_add(r, "consecutiveError", 1);
	} else {
		counter_add(r, "count", 1);
		json_object_set_new(r, "consecutiveError", json_integer(0));
	}
	if (msg)
		json_object_set_new(r, "message", json_string(msg));
	else
		json_object_del(r, "message");
	if (!strcmp(obj_str(r, "phase"), "Pending"))
		json_object_set_new(r, "phase", json_string("Running"));
	free(msg);
}

/* Argo's assessMetricStatus, plus V6's rule that a metric whose every
 * measurement errored never passes. *why (static text in buf) explains a
 * bad phase. */
static const char *
assess_metric(const struct mconf *c, const json_t *r, bool terminating, char *why,
    size_t whylen)
{
	const char *cur = obj_str(r, "phase");
	json_int_t count = obj_int_at(r, "count", 0), errors = obj_int_at(r, "error", 0);
	why[0] = '\0';
	if (phase_completed(cur))
		return cur;
	if (count + errors == 0)
		return terminating ? "Successful" : "Pending";
	const char *bad = NULL;
	if (obj_int_at(r, "failed", 0) > c->failure_limit) {
		bad = "Failed";
		snprintf(why, whylen, "failed (%lld) > failureLimit (%lld)",
		    (long long)obj_int_at(r, "failed", 0), (long long)c->failure_limit);
	}
	if (obj_int_at(r, "inconclusive", 0) > c->inconclusive_limit) {
		bad = "Inconclusive";
		snprintf(why, whylen, "inconclusive (%lld) > inconclusiveLimit (%lld)",
		    (long long)obj_int_at(r, "inconclusive", 0), (long long)c->inconclusive_limit);
	}
	if (obj_int_at(r, "consecutiveError", 0) > c->error_limit) {
		bad = "Error";
		snprintf(why, whylen, "consecutiveErrors (%lld) > consecutiveErrorLimit (%lld)",
		    (long long)obj_int_at(r, "consecutiveError", 0), (long long)c->error_limit);
	}
	if (bad)
		return bad;
	if (c->count >= 0 && count >= c->count)
		return "Successful";
	if (!terminating)
		return "Running";
	if (count == 0) {
		snprintf(why, whylen, "all %lld measurements errored", (long long)errors);
		return "Error";
	}
	return "Successful";
}

/* When the next measurement of c is due (wall clock ms). */
static int64_t
metric_due(const struct mconf *c, const json_t *r, int64_t started_ms)
{
	const json_t *list = json_object_get(r, "measurements");
	size_t n = json_array_size(list);
	if (n == 0)
		return started_ms + c->delay_ms;
	const json_t *last = json_array_get(list, n - 1);
	int64_t iv = c->interval_ms;
	if (!strcmp(obj_str(last, "phase"), "Error"))
		iv = iv < 0 || iv > AN_ERROR_RETRY_MS ? AN_ERROR_RETRY_MS : iv;
	else if (iv < 0)
		iv = AN_ERROR_RETRY_MS;		/* not reached: count 1 is done */
	return obj_time_ms(json_object_get(last, "finishedAt")) + iv;
}

static void
run_finish(struct arun_decision *d, json_t *status, const char *phase, const char *msg)
{
	json_object_set_new(status, "phase", json_string(phase));
	if (msg && *msg)
		json_object_set_new(status, "message", json_string(msg));
	else
		json_object_del(status, "message");
	d->completed = true;
	d->event_type = strcmp(phase, "Successful") ? "Warning" : "Normal";
	static const struct { const char *phase, *reason; } reasons[] = {
		{ "Successful", "AnalysisRunSuccessful" }, { "Failed", "AnalysisRunFailed" },
		{ "Error", "AnalysisRunError" }, { "Inconclusive", "AnalysisRunInconclusive" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(reasons); i++)
		if (!strcmp(phase, reasons[i].phase))
			d->event_reason = reasons[i].reason;
	d->event_message = msg && *msg ?
	    xasprintf("Analysis run completed with phase %s: %s", phase, msg) :
	    xasprintf("Analysis run completed with phase %s", phase);
}

static void
run_summary(json_t *status, const json_t *results)
{
	json_t *sum = json_pack("{s:i, s:i, s:i, s:i, s:i}", "count",
	    (json_int_t)json_array_size(results), "successful", 0, "failed", 0,
	    "inconclusive", 0, "error", 0);
	static const struct { const char *phase, *key; } keys[] = {
		{ "Successful", "successful" }, { "Failed", "failed" },
		{ "Inconclusive", "inconclusive" }, { "Error", "error" },
	};
	size_t i;
	json_t *r;
	json_array_foreach(results, i, r)
		for (size_t k = 0; k < ARRAY_SIZE(keys); k++)
			if (!strcmp(obj_str(r, "phase"), keys[k].phase))
				counter_add(sum, keys[k].key, 1);
	json_object_set_new(status, "runSummary", sum);
}

/* Parses every metric; *confs (caller frees) parallel to metrics. */
static int
confs_parse(const json_t *metrics, struct mconf **confs, char **err)
{
	size_t n = json_array_size(metrics);
	*confs = xcalloc(n ? n : 1, sizeof **confs);
	for (size_t i = 0; i < n; i++)
		if (conf_parse(json_array_get(metrics, i), &(*confs)[i], err) < 0)
			return -EINVAL;
	return 0;
}

/* Assesses every metric; returns whether one turned bad. *worst / why of
 * the worst completed metric (for the run). */
static bool
assess_all(const struct mconf *confs, size_t n, json_t *results, bool terminating,
    const char **worst, struct buf *why)
{
	bool turned_bad = false;
	for (size_t i = 0; i < n; i++) {
		json_t *r = result_find(results, confs[i].name);
		char reason[160];
		const char *ph = assess_metric(&confs[i], r, terminating, reason, sizeof reason);
		if (strcmp(ph, obj_str(r, "phase"))) {
			turned_bad |= phase_bad(ph);
			json_object_set_new(r, "phase", json_string(ph));
			if (reason[0])
				json_object_set_new(r, "reason", json_string(reason));
		}
		if (phase_completed(ph) && phase_rank(ph) > phase_rank(*worst)) {
			*worst = ph;
			buf_reset(why);
			buf_puts(why, "");
			const char *rs = obj_str(r, "reason");
			if (*rs && phase_bad(ph)) {
				buf_printf(why, "Metric \"%s\" assessed %s due to %s", confs[i].name,
				    ph, rs);
				if (*obj_str(r, "message"))
					buf_printf(why, ": \"Error Message: %s\"", obj_str(r, "message"));
			}
		}
	}
	return turned_bad;
}

/* The "reason" key is scratch for assess_all; it is not part of status. */
static void
drop_reasons(json_t *results)
{
	size_t i;
	json_t *r;
	json_array_foreach(results, i, r)
		json_object_del(r, "reason");
}

int
arun_decide(const json_t *run, int64_t now_ms, const struct arun_outcome *outs, size_t n,
    struct arun_decision *out)
{
	memset(out, 0, sizeof *out);
	const json_t *spec = json_object_get(run, "spec");
	json_t *st0 = json_object_get(run, "status");
	json_t *status = json_is_object(st0) ? json_deep_copy(st0) : json_object();
	out->status = status;
	out->measure = json_array();
	if (phase_completed(obj_str(status, "phase")))
		return 0;
	if (!json_object_get(status, "startedAt"))
		json_object_set_new(status, "startedAt", ts_json(now_ms));
	int64_t started_ms = obj_time_ms(json_object_get(status, "startedAt"));
	char *err = NULL;
	struct mconf *confs = NULL;
	json_t *metrics = subst_json(json_object_get(spec, "metrics"),
	    json_object_get(spec, "args"), &err);
	if (!metrics) {
		char *m = xasprintf("unable to resolve metric arguments: %s", err);
		run_finish(out, status, "Error", m);
		free(m);
		free(err);
		return 0;
	}
	size_t nm = json_array_size(metrics);
	if (confs_parse(metrics, &confs, &err) < 0) {
		run_finish(out, status, "Error", err);
		goto done;
	}
	json_t *results = json_object_get(status, "metricResults");
	if (!json_is_array(results)) {
		results = json_array();
		json_object_set_new(status, "metricResults", results);
	}
	for (size_t i = 0; i < nm; i++)
		if (!result_find(results, confs[i].name))
			json_array_append_new(results, result_new(confs[i].name));
	bool terminate = json_is_true(json_object_get(spec, "terminate"));
	bool terminating = terminate;
	size_t i;
	json_t *r;
	json_array_foreach(results, i, r)
		terminating |= phase_bad(obj_str(r, "phase"));
	/* Measurements that land once the run is stopping are not counted
	 * (Argo takes none then). */
	for (size_t k = 0; k < n && !terminating; k++) {
		for (size_t j = 0; j < nm; j++) {
			r = result_find(results, confs[j].name);
			if (!strcmp(confs[j].name, outs[k].metric) &&
			    !phase_completed(obj_str(r, "phase")))
				result_record(r, &confs[j], &outs[k]);
		}
	}
	const char *worst = "";
	struct buf why = BUF_INIT;
	if (assess_all(confs, nm, results, terminating, &worst, &why) && !terminating) {
		terminating = true;
		worst = "";
		assess_all(confs, nm, results, true, &worst, &why);
	}
	drop_reasons(results);
	run_summary(status, results);
	bool all_done = true;
	json_array_foreach(results, i, r)
		all_done &= phase_completed(obj_str(r, "phase"));
	if (terminating || all_done) {
		const char *phase = *worst ? worst : "Successful";
		const char *msg = why.data && *why.data ? why.data :
		    terminate && !strcmp(phase, "Successful") ? "Run Terminated" : "";
		run_finish(out, status, phase, msg);
		buf_free(&why);
		goto done;
	}
	buf_free(&why);
	json_object_set_new(status, "phase", json_string("Running"));
	json_object_del(status, "message");
	for (size_t j = 0; j < nm; j++) {
		r = result_find(results, confs[j].name);
		if (phase_completed(obj_str(r, "phase")))
			continue;
		int64_t due = metric_due(&confs[j], r, started_ms);
		if (due <= now_ms)
			json_array_append(out->measure, (json_t *)confs[j].m);
		else if (out->requeue_ms == 0 || due - now_ms < out->requeue_ms)
			out->requeue_ms = due - now_ms;
	}
done:
	free(confs);
	free(err);
	json_decref(metrics);
	return 0;
}

void
arun_decision_free(struct arun_decision *d)
{
	json_decref(d->status);
	json_decref(d->measure);
	free(d->event_message);
	memset(d, 0, sizeof *d);
}

/* ---- provider answers (pure) ------------------------------------------- */

/* A sample value as Prometheus writes it: [ts, "1.5"]; NaN / Inf kept. */
static int
prom_number(const json_t *pair, double *out)
{
	const char *s = json_string_value(json_array_get(pair, 1));
	char *end;
	if (!s)
		return -EINVAL;
	*out = strtod(s, &end);
	return *end ? -EINVAL : 0;
}

enum arun_outcome_kind
arun_prom_result(const char *body, size_t len, json_t **result, char **value, char **msg)
{
	json_error_t je;
	json_t *doc = json_loadb(body, len, 0, &je);
	enum arun_outcome_kind kind = ARUN_ERROR;
	*result = NULL;
	*value = *msg = NULL;
	if (!doc) {
		*msg = xasprintf("prometheus: the answer is not JSON: %s", je.text);
		return ARUN_ERROR;
	}
	const json_t *data = json_object_get(doc, "data");
	const char *type = obj_str(data, "resultType");
	const json_t *res = json_object_get(data, "result");
	if (strcmp(obj_str(doc, "status"), "success")) {
		*msg = xasprintf("prometheus: %s: %s", obj_str(doc, "errorType"),
		    obj_str(doc, "error"));
	} else if (!strcmp(type, "scalar")) {
		double d;
		if (prom_number(res, &d) < 0)
			*msg = xstrdup("prometheus: malformed scalar");
		else if (isnan(d) || isinf(d))
			kind = ARUN_NODATA, *msg = xasprintf("prometheus: the query returned %s "
			    "(no data)", isnan(d) ? "NaN" : "Inf");
		else
			kind = ARUN_OK, *result = json_real(d), *value = fmt_number(d);
	} else if (!strcmp(type, "vector")) {
		json_t *arr = json_array();
		struct buf vb = BUF_INIT;
		size_t i;
		json_t *sample;
		buf_putc(&vb, '[');
		kind = json_array_size(res) ? ARUN_OK : ARUN_NODATA;
		json_array_foreach(res, i, sample) {
			double d;
			if (prom_number(json_object_get(sample, "value"), &d) < 0) {
				kind = ARUN_ERROR;
				break;
			}
			if (isnan(d) || isinf(d)) {
				kind = ARUN_NODATA;
				break;
			}
			char *f = fmt_number(d);
			buf_printf(&vb, "%s%s", i ? "," : "", f);
			free(f);
			json_array_append_new(arr, json_real(d));
		}
		buf_putc(&vb, ']');
		if (kind == ARUN_OK) {
			*result = arr;
			*value = buf_steal(&vb);
		} else {
			json_decref(arr);
			*msg = xstrdup(kind == ARUN_ERROR ? "prometheus: malformed vector sample" :
			    json_array_size(res) ? "prometheus: the query returned NaN (no data)" :
			    "prometheus: the query returned an empty vector (no data)");
		}
		buf_free(&vb);
	} else {
		*msg = xasprintf("prometheus: result type \"%s\" is not supported (vector or "
		    "scalar expected)", type);
	}
	json_decref(doc);
	return kind;
}

/* One step of a JSONPath: ".name", "['name']", "[N]". Returns the rest,
 * or NULL when malformed. */
static const char *
path_step(const char *p, const json_t **cur, char **err)
{
	if (*p == '.') {
		size_t n = strcspn(p + 1, ".[");
		if (n == 0) {
			*err = xstrdup("empty field name");
			return NULL;
		}
		char *key = xstrndup(p + 1, n);
		*cur = json_object_get(*cur, key);
		if (!*cur)
			*err = xasprintf("%s is not found", key);
		free(key);
		return *cur ? p + 1 + n : NULL;
	}
	if (*p == '[' && (p[1] == '\'' || p[1] == '"')) {
		const char *end = strchr(p + 2, p[1]);
		if (!end || end[1] != ']') {
			*err = xstrdup("unterminated ['...']");
			return NULL;
		}
		char *key = xstrndup(p + 2, (size_t)(end - p - 2));
		*cur = json_object_get(*cur, key);
		if (!*cur)
			*err = xasprintf("%s is not found", key);
		free(key);
		return *cur ? end + 2 : NULL;
	}
	if (*p == '[') {
		char *end;
		long idx = strtol(p + 1, &end, 10);
		if (end == p + 1 || *end != ']') {
			*err = xstrdup("expected [index]");
			return NULL;
		}
		size_t n = json_array_size(*cur);
		if (idx < 0)
			idx += (long)n;
		if (!json_is_array(*cur) || idx < 0 || (size_t)idx >= n) {
			*err = xasprintf("array index %ld is out of range", idx);
			return NULL;
		}
		*cur = json_array_get(*cur, (size_t)idx);
		return end + 1;
	}
	*err = xasprintf("unexpected \"%s\"", p);
	return NULL;
}

const json_t *
arun_json_path(const json_t *doc, const char *path, char **err)
{
	*err = NULL;
	size_t len = strlen(path);
	char *p0 = xstrdup(path), *p = p0;
	if (len >= 2 && p[0] == '{' && p[len - 1] == '}') {
		p[len - 1] = '\0';
		p++;
	}
	if (*p == '$')
		p++;
	const json_t *cur = doc;
	const char *rest = p;
	while (rest && *rest)
		rest = path_step(rest, &cur, err);
	if (*err) {
		char *e = xasprintf("jsonPath %s: %s", path, *err);
		free(*err);
		*err = e;
		cur = NULL;
	}
	free(p0);
	return cur;
}

/* ---- the controller ----------------------------------------------------- */

/* A finished measurement waiting for its run's next sync. */
struct pending {
	struct pending *next;
	char *key, *uid, *metric;
	enum arun_outcome_kind kind;
	json_t *result;
	char *value, *message;
	int64_t started_ms, finished_ms;
};

/* An HTTP measurement on the thread pool: only plain C data crosses. */
struct job {
	struct job *next;
	atomic_bool cancel;		/* set by ctrl_stop (job_cancel), read by the thread */
	char *key, *uid, *metric;
	bool prometheus;
	json_t *provider;		/* loop side only: the provider object */
	char *url, *method, *body, *query;
	char **headers;			/* "Key: value", NULL-terminated */
	long timeout_ms;
	bool insecure;
	int64_t started_ms;
	/* filled by the thread */
	long http_code;
	struct buf resp;
	char errbuf[CURL_ERROR_SIZE];
	int curl_rc;
	bool too_big;
};

/* The adapter's state (ctrl_data of its core). */
struct ctrl_analysis {
	struct obs_traffic *traffic;
	struct ctrl *core;
	struct job *jobs;		/* web / prometheus measurements running */
	struct pending *pend;
	bool curl_ready;		/* curl_global_init done (at the first job) */
};

static void
pending_free(struct pending *p)
{
	free(p->key);
	free(p->uid);
	free(p->metric);
	json_decref(p->result);
	free(p->value);
	free(p->message);
	free(p);
}

/* Queues an outcome for run key and wakes its sync. Takes result. */
static void
pending_push(struct ctrl_analysis *c, const char *key, const char *uid, const char *metric,
    enum arun_outcome_kind kind, json_t *result, char *value, char *message,
    int64_t started_ms)
{
	struct pending *p = xcalloc(1, sizeof *p), **tail = &c->pend;
	p->key = xstrdup(key);
	p->uid = xstrdup(uid);
	p->metric = xstrdup(metric);
	p->kind = kind;
	p->result = result;
	p->value = value;
	p->message = message;
	p->started_ms = started_ms;
	p->finished_ms = time_now_ms();
	while (*tail)
		tail = &(*tail)->next;
	*tail = p;
	ctrl_enqueue_key(c->core, key);
}

static bool
job_running(const struct ctrl_analysis *c, const char *key, const char *metric)
{
	for (const struct job *j = c->jobs; j; j = j->next)
		if (!strcmp(j->key, key) && !strcmp(j->metric, metric))
			return true;
	return false;
}

static void
job_free(struct job *j)
{
	free(j->key);
	free(j->uid);
	free(j->metric);
	json_decref(j->provider);
	free(j->url);
	free(j->method);
	free(j->body);
	free(j->query);
	for (char **h = j->headers; h && *h; h++)
		free(*h);
	free(j->headers);
	buf_free(&j->resp);
	free(j);
}

static size_t
job_collect(char *p, size_t size, size_t n, void *arg)
{
	struct job *j = arg;
	if (j->resp.len + size * n > AN_MAX_BODY) {
		j->too_big = true;
		return 0;
	}
	buf_append(&j->resp, p, size * n);
	return size * n;
}

/* Lets ctrl_analysis_stop end a transfer within a second. */
static int
job_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct job *j = arg;
	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return atomic_load(&j->cancel) ? 1 : 0;
}

static void
job_cancel(void *arg)
{
	struct job *j = arg;
	atomic_store(&j->cancel, true);
}

/* Thread pool: one blocking HTTP exchange; touches only j. */
static void
job_work(void *arg)
{
	struct job *j = arg;
	CURL *h = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	char *url = NULL;
	if (!h) {
		j->curl_rc = CURLE_FAILED_INIT;
		return;
	}
	if (j->query) {
		char *q = curl_easy_escape(h, j->query, 0);
		url = xasprintf("%s/api/v1/query?query=%s", j->url, q ? q : "");
		curl_free(q);
	}
	for (char **x = j->headers; x && *x; x++)
		hdrs = curl_slist_append(hdrs, *x);
	curl_easy_setopt(h, CURLOPT_URL, url ? url : j->url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, j->method);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, j->timeout_ms);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, j->errbuf);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, job_collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, j);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "v6-analysis/" V6_VERSION);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, job_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, j);
	if (j->body)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, j->body);
	if (j->insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	j->curl_rc = (int)curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &j->http_code);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	free(url);
}

/* The web provider's answer: the JSON value at jsonPath. */
static enum arun_outcome_kind
web_result(const struct job *j, json_t **result, char **value, char **msg)
{
	json_error_t je;
	json_t *doc = json_loadb(j->resp.data ? j->resp.data : "", j->resp.len,
	    JSON_DECODE_ANY, &je);
	const char *path = json_string_value(json_object_get(j->provider, "jsonPath"));
	char *err = NULL;
	if (!doc) {
		*msg = xasprintf("could not parse JSON body: %s", je.text);
		return ARUN_ERROR;
	}
	const json_t *v = path ? arun_json_path(doc, path, &err) : doc;
	enum arun_outcome_kind kind = ARUN_ERROR;
	if (!v)
		*msg = err;
	else if (json_is_null(v))
		kind = ARUN_NODATA, *msg = xasprintf("%s is null (no data)", path ? path : "the body");
	else
		kind = ARUN_OK, *result = json_incref((json_t *)v), *value = fmt_value(v);
	json_decref(doc);
	return kind;
}

/* On the loop: the outcome becomes a pending one; the core syncs the run
 * again. core NULL: the controller stopped, the job only goes. */
static void
job_done(struct ctrl *core, void *arg, int status)
{
	struct job *j = arg;
	if (!core) {
		job_free(j);
		return;
	}
	struct ctrl_analysis *c = ctrl_data(core);
	for (struct job **pp = &c->jobs; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	json_t *result = NULL;
	char *value = NULL, *msg = NULL;
	enum arun_outcome_kind kind = ARUN_ERROR;
	if (status < 0)
		msg = xasprintf("measurement abandoned: %s", uv_strerror(status));
	else if (j->curl_rc != CURLE_OK)
		msg = xasprintf("%s %s: %s", j->method, j->url, j->too_big ? "answer too large" :
		    j->errbuf[0] ? j->errbuf : curl_easy_strerror((CURLcode)j->curl_rc));
	else if (j->prometheus)
		kind = arun_prom_result(j->resp.data ? j->resp.data : "", j->resp.len, &result,
		    &value, &msg);
	else if (j->http_code < 200 || j->http_code > 299)
		msg = xasprintf("received non 2xx response code: %ld", j->http_code);
	else
		kind = web_result(j, &result, &value, &msg);
	pending_push(c, j->key, j->uid, j->metric, kind, result, value, msg, j->started_ms);
	job_free(j);
}

static char **
headers_of(const json_t *prov, const char *extra)
{
	const json_t *list = json_object_get(prov, "headers");
	size_t n = json_array_size(list), k = 0, i;
	char **h = xcalloc(n + 2, sizeof *h);
	json_t *x;
	json_array_foreach(list, i, x)
		h[k++] = xasprintf("%s: %s", obj_str(x, "key"), obj_str(x, "value"));
	if (extra)
		h[k++] = xstrdup(extra);
	return h;
}

static void
job_start(struct ctrl_analysis *c, const char *key, const json_t *run, const json_t *m,
    const json_t *prov, bool prometheus)
{
	struct job *j = xcalloc(1, sizeof *j);
	json_int_t tmo = prometheus ? obj_int_at(prov, "timeout", 0) : obj_int_at(prov, "timeoutSeconds", 0);
	j->key = xstrdup(key);
	j->uid = xstrdup(obj_uid(run));
	j->metric = xstrdup(obj_str(m, "name"));
	j->prometheus = prometheus;
	j->provider = json_incref((json_t *)prov);
	j->timeout_ms = 1000L * (tmo > 0 ? (long)tmo : AN_DEFAULT_TIMEOUT_S);
	j->insecure = json_is_true(json_object_get(prov, "insecure"));
	j->started_ms = time_now_ms();
	if (prometheus) {
		const char *addr = obj_str(prov, "address");
		size_t n = strlen(addr);
		while (n > 0 && addr[n - 1] == '/')
			n--;
		j->url = xstrndup(addr, n);
		j->query = xstrdup(obj_str(prov, "query"));
		j->method = xstrdup("GET");
		j->headers = headers_of(prov, "Accept: application/json");
	} else {
		const json_t *jb = json_object_get(prov, "jsonBody");
		j->url = xstrdup(obj_str(prov, "url"));
		j->method = xstrdup(*obj_str(prov, "method") ? obj_str(prov, "method") : "GET");
		if (jb)
			j->body = json_dumps(jb, JSON_COMPACT | JSON_ENCODE_ANY);
		else if (json_object_get(prov, "body"))
			j->body = xstrdup(obj_str(prov, "body"));
		j->headers = headers_of(prov, jb ? "Content-Type: application/json" : NULL);
	}
	j->next = c->jobs;
	c->jobs = j;
	/* On the loop thread (curl_global_init is not thread-safe), and only
	 * once a web or Prometheus measurement is due: initialising the TLS
	 * libraries costs a server that never needs them ~4 MB of RSS. */
	if (!c->curl_ready)
		c->curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
	int rc = ctrl_queue_work(c->core, key, job_work, job_done, job_cancel, j);
	if (rc < 0) {
		c->jobs = j->next;
		pending_push(c, key, j->uid, j->metric, ARUN_ERROR, NULL, NULL,
		    xasprintf("cannot start the measurement: %s", uv_strerror(rc)), j->started_ms);
		job_free(j);
	}
}

/* Whether a v6 measurement without data is not taken yet: the samples seen
 * since the run started (when the canary got its traffic) do not span the
 * window yet, so "no requests" may only mean "no sample since". Such a
 * measurement is retried, never recorded as Inconclusive. age_ms < 0: no
 * sample at all. */
static bool
v6_not_yet(const json_t *run, int64_t window_ms, int64_t age_ms, int64_t now)
{
	const json_t *at = obj_get_path(run, "status.startedAt");
	int64_t started = at ? obj_time_ms(at) : now;
	return age_ms < 0 || now - age_ms - started < window_ms;
}

#define AN_V6_RETRY_MS 500	/* a new sample comes every --traffic-period */

/* The v6 provider: the proxy's figures over the window (on the loop, no
 * I/O). Zero requests in the window is no data (Inconclusive), except for
 * requestRate whose answer is then 0, once the window has passed since the
 * run started (v6_not_yet). */
static void
v6_measure(struct ctrl_analysis *c, const char *key, const json_t *run, const json_t *m,
    const json_t *prov)
{
	const char *metric = obj_str(prov, "metric"), *svc = obj_str(prov, "service");
	const char *rev = json_string_value(json_object_get(prov, "revision"));
	const char *win = *obj_str(prov, "window") ? obj_str(prov, "window") : AN_V6_DEFAULT_WINDOW;
	char *service = *svc ? (strchr(svc, '/') ? xstrdup(svc) :
	    xasprintf("%s/%s", obj_namespace(run), svc)) : NULL;
	int64_t now = time_now_ms(), window_ms = 0;
	struct obs_traffic_stats st;
	enum arun_outcome_kind kind = ARUN_ERROR;
	json_t *result = NULL;
	char *msg = NULL;
	int rc = -EINVAL;
	if (duration_parse(win, &window_ms) < 0)
		msg = xasprintf("v6: invalid window \"%s\"", win);
	else if (!c->traffic)
		msg = xstrdup("v6: traffic figures are not available (the proxy is turned off)");
	else if ((rc = obs_traffic_query_window(c->traffic, service, rev, window_ms, &st)) ==
	    -EAGAIN || rc == -ENOENT || (rc == 0 && st.requests == 0 &&
	    strcmp(metric, "requestRate"))) {
		if (v6_not_yet(run, window_ms, rc == -EAGAIN ? -1 : st.age_ms, now)) {
			ctrl_enqueue_after(c->core, key, AN_V6_RETRY_MS);
			free(service);
			return;
		}
		if (rc == -EAGAIN)
			msg = xstrdup("v6: traffic figures are not ready yet (fewer than two "
			    "samples)");
		else
			kind = ARUN_NODATA, msg = xasprintf("v6: no requests to %s%s%s in the last "
			    "%s (no data)", service ? service : "", service && rev ? " revision " :
			    rev ? "revision " : "", rev ? rev : "", win);
	} else if (rc < 0)
		msg = xasprintf("v6: %s", strerror(-rc));
	if (rc == 0 && !msg) {
		static const struct { const char *name; size_t off; } fields[] = {
			{ "successRate", offsetof(struct obs_traffic_stats, success_rate) },
			{ "errorRate", offsetof(struct obs_traffic_stats, error_rate) },
			{ "p99", offsetof(struct obs_traffic_stats, p99_ms) },
			{ "avgLatency", offsetof(struct obs_traffic_stats, avg_ms) },
			{ "requestRate", offsetof(struct obs_traffic_stats, rps) },
		};
		for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
			if (!strcmp(metric, fields[i].name))
				result = json_real(*(const double *)((const char *)&st +
				    fields[i].off));
		kind = result ? ARUN_OK : ARUN_ERROR;
		if (!result)
			msg = xasprintf("v6: unknown metric \"%s\"", metric);
	}
	pending_push(c, key, obj_uid(run), obj_str(m, "name"), kind, result,
	    result ? fmt_value(result) : NULL, msg, now);
	free(service);
}

static void
measure_start(struct ctrl_analysis *c, const char *key, const json_t *run, const json_t *m)
{
	const json_t *prov = json_object_get(m, "provider");
	const json_t *p;
	if (job_running(c, key, obj_str(m, "name")))
		return;
	if ((p = json_object_get(prov, "web")))
		job_start(c, key, run, m, p, false);
	else if ((p = json_object_get(prov, "prometheus")))
		job_start(c, key, run, m, p, true);
	else if ((p = analysis_v6_provider(prov)))
		v6_measure(c, key, run, m, p);
	else
		pending_push(c, key, obj_uid(run), obj_str(m, "name"), ARUN_ERROR, NULL, NULL,
		    xstrdup("no supported provider"), time_now_ms());
}

/* The outcomes waiting for key, uid's (others are stale: freed) as outs[]
 * (caller frees the array; its strings stay in the pending list). */
static struct arun_outcome *
pending_outcomes(struct ctrl_analysis *c, const char *key, const char *uid, size_t *n)
{
	struct pending **pp = &c->pend, *p;
	size_t k = 0;
	while ((p = *pp) != NULL) {
		if (!strcmp(p->key, key) && (!uid || strcmp(p->uid, uid))) {
			*pp = p->next;
			pending_free(p);
			continue;
		}
		k += !strcmp(p->key, key);
		pp = &p->next;
	}
	struct arun_outcome *outs = xcalloc(k ? k : 1, sizeof *outs);
	*n = 0;
	for (p = c->pend; p; p = p->next)
		if (!strcmp(p->key, key))
			outs[(*n)++] = (struct arun_outcome){ .metric = p->metric, .kind = p->kind,
				.result = p->result, .value = p->value, .message = p->message,
				.started_ms = p->started_ms, .finished_ms = p->finished_ms };
	return outs;
}

/* Drops the outcomes of key (all of them: uid NULL). */
static void
pending_drop(struct ctrl_analysis *c, const char *key)
{
	struct pending **pp = &c->pend, *p;
	while ((p = *pp) != NULL) {
		if (strcmp(p->key, key)) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		pending_free(p);
	}
}

static void
pending_free_list(struct pending *p)
{
	while (p) {
		struct pending *next = p->next;
		pending_free(p);
		p = next;
	}
}

static char *
run_key(const json_t *run)
{
	return xasprintf("%s/%s", obj_namespace(run), obj_name(run));
}

/* The decision on the core: the outcomes that finished since the last
 * sync go into arun_decide; its status (when it changed) and, once the
 * run completed, its Event are the writes; what to measure next waits in
 * out->carry for an_after, which starts it only once the status is
 * stored (a failed write keeps the outcomes for the next decide). */
static int
an_decide(struct ctrl *core, const json_t *run, int64_t now_ms, struct ctrl_writes *out)
{
	struct ctrl_analysis *c = ctrl_data(core);
	struct arun_decision d = { 0 };
	char *key = run_key(run);
	size_t n;
	struct arun_outcome *outs = pending_outcomes(c, key, obj_uid(run), &n);
	arun_decide(run, now_ms, outs, n, &d);
	free(outs);
	if (!json_equal(d.status, json_object_get(run, "status"))) {
		json_t *copy = json_deep_copy(run);
		json_object_set(copy, "status", d.status);
		ctrl_writes_push(out, CTRL_STATUS, NULL, copy, 0);
	}
	if (d.completed) {
		log_info("analysis", "analysis run %s finished: %s", key, obj_str(d.status, "phase"));
		ctrl_writes_event(out, d.event_type, d.event_reason, d.event_message);
	}
	out->carry = json_incref(d.measure);
	out->requeue_ms = d.requeue_ms;
	arun_decision_free(&d);
	free(key);
	return 0;
}

static void
an_after(struct ctrl *core, const json_t *run, const struct ctrl_write *failed,
    struct ctrl_writes *out)
{
	struct ctrl_analysis *c = ctrl_data(core);
	if (failed)
		return;		/* the outcomes wait for the next decide */
	char *key = run_key(run);
	size_t i;
	json_t *m;
	pending_drop(c, key);
	json_array_foreach(out->carry, i, m)
		measure_start(c, key, run, m);
	free(key);
}

static bool
run_active(const json_t *run)
{
	return !phase_completed(obj_str(json_object_get(run, "status"), "phase"));
}

static void
an_on_run(struct ctrl *core, enum store_event ev, const json_t *run)
{
	struct ctrl_analysis *c = ctrl_data(core);
	char *key = run_key(run);
	if (ev == STORE_DELETED)
		pending_drop(c, key);
	else if (run_active(run))
		ctrl_enqueue_key(core, key);
	free(key);
}

/* The runs still going (a finished run is never measured again). */
static void
an_seed(struct ctrl *core)
{
	json_t *items = NULL, *run;
	size_t i;
	if (store_list(ctrl_store(core), "argoproj.io/analysisruns", NULL, &items, NULL) < 0)
		return;
	json_array_foreach(items, i, run)
		if (run_active(run))
			ctrl_enqueue(core, obj_namespace(run), obj_name(run));
	json_decref(items);
}

static const struct ctrl_desc an_desc = {
	.name = "analysisrun", .component = AN_COMPONENT,	/* the work queue's metrics name */
	.api_version = "argoproj.io/v1alpha1", .kind = "AnalysisRun",
	.res = "argoproj.io/analysisruns",
	.sources = { { "argoproj.io/analysisruns", an_on_run } },
	.decide = an_decide, .after = an_after, .seed = an_seed,
};

int
ctrl_analysis_start(struct api *api, struct obs_traffic *traffic, struct ctrl_analysis **out)
{
	struct ctrl_analysis *c = xcalloc(1, sizeof *c);
	c->traffic = traffic;
	int rc = ctrl_start(api, &an_desc, c, &c->core);
	if (rc < 0) {
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void
ctrl_analysis_stop(struct ctrl_analysis *c)
{
	if (!c)
		return;
	bool running = ctrl_jobs(c->core) > 0;
	ctrl_stop(c->core);		/* cancels the jobs; job_done frees them */
	pending_free_list(c->pend);
	if (!running && c->curl_ready)	/* threads still in curl need it initialised */
		curl_global_cleanup();
	free(c);
}
