/* analysis.h — canary analysis: the expression language of
 * successCondition / failureCondition (analysis_expr.c) and the
 * AnalysisRun controller with its metric providers (ctrl_analysis.c). */
#ifndef V6_ANALYSIS_H
#define V6_ANALYSIS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* V6's metric provider (the proxy's traffic figures) is an Argo metric plugin of
 * this name: provider: {plugin: {"v6.dev/traffic": {service, revision, metric, window}}}.
 * Stored runs of the first form, provider: {v6: {...}}, are still measured. */
#define AN_V6_PLUGIN	"v6.dev/traffic"

/* The v6 provider's configuration in prov (a metric's `provider`), or NULL. */
static inline const json_t *
analysis_v6_provider(const json_t *prov)
{
	const json_t *p = json_object_get(json_object_get(prov, "plugin"), AN_V6_PLUGIN);
	return p ? p : json_object_get(prov, "v6");
}

/* analysis_expr.c */
/* Checks that expr parses; 0, or -EINVAL with *err = "column N: message"
 * (caller frees). */
int aexpr_check(const char *expr, char **err);
/* Evaluates expr with the identifier `result` bound to result (any JSON
 * value, borrowed) and stores its truth in *out. Returns 0, or -EINVAL with
 * *err (caller frees) for a syntax error or an evaluation error (type
 * mismatch, index out of range, unknown identifier or function). */
int aexpr_eval_bool(const char *expr, const json_t *result, bool *out, char **err);


/* ctrl_analysis.c — the AnalysisRun controller. arun_decide() is the pure
 * decision; the watch layer runs the providers (web, prometheus: libcurl on
 * the thread pool; v6: the proxy's live figures) and writes /status. */
struct api;
struct obs_traffic;

/* How one provider call ended. */
enum arun_outcome_kind {
	ARUN_OK,	/* result holds the value the conditions see */
	ARUN_NODATA,	/* no data (zero requests, empty vector, NaN): Inconclusive */
	ARUN_ERROR,	/* the provider or the query failed: Error */
};

/* One finished measurement, as the watch layer hands it to arun_decide. */
struct arun_outcome {
	const char *metric;		/* metric name (borrowed) */
	enum arun_outcome_kind kind;
	const json_t *result;		/* ARUN_OK: borrowed */
	const char *value;		/* status "value"; NULL: formatted from result */
	const char *message;		/* ARUN_NODATA / ARUN_ERROR: why (borrowed) */
	int64_t started_ms, finished_ms;	/* wall clock */
};

struct arun_decision {
	json_t *status;		/* the run's new status (new reference) */
	json_t *measure;	/* resolved metrics ({{args.*}} substituted) to
				 * measure now: array of Metric objects */
	int64_t requeue_ms;	/* > 0: decide again after this long */
	bool completed;		/* the run reached a final phase in this decision */
	const char *event_type, *event_reason;	/* static; set when completed */
	char *event_message;
};

/* The decision for AnalysisRun run at now_ms (wall clock) given the
 * measurements that finished since its status was written (outs[n]; an
 * outcome for a metric that already completed is ignored). Argo Rollouts
 * v1.6 semantics: counters, failure / inconclusive / consecutive-error
 * limits, count, terminate; no data is Inconclusive. A run already in a
 * final phase gets its status back unchanged and nothing to measure.
 * Returns 0; *out is filled (arun_decision_free releases it). */
int arun_decide(const json_t *run, int64_t now_ms, const struct arun_outcome *outs,
    size_t n, struct arun_decision *out);
void arun_decision_free(struct arun_decision *d);
/* Phase of one measurement of metric: "Successful", "Failed",
 * "Inconclusive" or "Error" (static); *msg (caller frees, may be NULL) says
 * why for Error / Inconclusive. */
const char *arun_measurement_phase(const json_t *metric, const struct arun_outcome *o,
    char **msg);
/* Substitutes {{args.NAME}} in s from args ([{name, value}]). Returns 0
 * with *out (caller frees), or -ENOENT with *err = the message (caller
 * frees) for an arg that is missing or has no value. */
int arun_subst_args(const char *s, const json_t *args, char **out, char **err);
/* Parses a Prometheus /api/v1/query answer: a vector gives an array of
 * numbers, a scalar a number. Returns the outcome kind, *result (new
 * reference, ARUN_OK), *value / *msg (caller frees). */
enum arun_outcome_kind arun_prom_result(const char *body, size_t len, json_t **result,
    char **value, char **msg);
/* The value at a JSONPath ("{$.data.ok}", "$.a[0].b", ".a.b") in doc, as
 * Kubernetes' jsonpath writes them (a subset: fields, ['quoted'], [index]).
 * Returns a borrowed value, or NULL with *err (caller frees). */
const json_t *arun_json_path(const json_t *doc, const char *path, char **err);

struct ctrl_analysis;
/* Watches AnalysisRuns and drives them to a final phase. traffic may be
 * NULL (the v6 provider then errors). Returns 0 or negative errno. */
int ctrl_analysis_start(struct api *api, struct obs_traffic *traffic,
    struct ctrl_analysis **out);
/* Stops; measurements in flight are abandoned (their status never written). */
void ctrl_analysis_stop(struct ctrl_analysis *c);

#endif
