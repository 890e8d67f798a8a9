/* hpa.h — the HorizontalPodAutoscaler: the pure decision (hpa_decide.c),
 * kube-controller-manager's replica calculator and normalization with its
 * per-HPA memory (recommendations, scale events), and the controller on the
 * controller core that feeds it (ctrl_hpa.c). */
#ifndef V6_HPA_H
#define V6_HPA_H

#include "ctrl.h"

enum hpa_res { HPA_CPU, HPA_MEMORY, HPA_NRES };

/* One pod the target's selector selects, as the replica calculator sees it. */
struct hpa_pod {
	const char *name;
	bool ignored;		/* being deleted, or Failed */
	bool pending;		/* phase Pending: counted as unready */
	bool has_ready;		/* has a Ready condition (and a startTime) */
	bool ready;		/* Ready is True */
	int64_t start_ms;	/* status.startTime */
	int64_t ready_ms;	/* the Ready condition's lastTransitionTime */
	bool has_metric;	/* the node reported its usage */
	int64_t metric_ms, window_ms;	/* the sample's timestamp and window */
	int64_t usage[HPA_NRES];	/* milli-units: millicores, millibytes */
	int64_t request[HPA_NRES];	/* the sum over containers, milli-units */
	bool has_request[HPA_NRES];	/* every container requests it */
};

/* What the controller read for one entry of spec.metrics that is not a
 * Resource metric (custom.metrics.k8s.io, external.metrics.k8s.io). */
#define HPA_NO_VALUE INT64_MIN
struct hpa_metric_in {
	int rc;			/* 0, or negative with why */
	char why[320];
	int64_t value;		/* Object / External: milli-units */
	int64_t *pod_values;	/* Pods: per pod of pods[], HPA_NO_VALUE: none */
};

/* What the controller remembers per HPA between syncs (bounded). */
#define HPA_HIST_MAX 64
struct hpa_rec { int32_t replicas; int64_t ms; };
struct hpa_scale_ev { int32_t change; int64_t ms; };
struct hpa_history {
	struct hpa_rec recs[HPA_HIST_MAX];
	size_t nrecs;
	struct hpa_scale_ev up[HPA_HIST_MAX], down[HPA_HIST_MAX];
	size_t nup, ndown;
};

/* The controller manager's flags. */
struct hpa_config {
	double tolerance;		/* 0.1 */
	int64_t cpu_init_ms;		/* 5 min */
	int64_t readiness_delay_ms;	/* 30 s */
	int64_t downscale_window_ms;	/* 5 min, for an HPA without behavior */
};
void hpa_config_default(struct hpa_config *cfg);

struct hpa_decision {
	int32_t current, desired;	/* the scale's replicas, the decision */
	bool rescale;			/* desired != current: write the scale */
	char reason[256];		/* SuccessfulRescale's "reason: ..." */
	json_t *status;			/* the HPA's new status (new reference) */
	json_t *events;			/* [{type, reason, message}] warnings to record */
};

/* One reconcile of hpa (the autoscaling/v2 object, defaulted) whose target
 * has spec.replicas = current, over its pods (the scale's selector) and in
 * (per spec.metrics index: the Pods / Object / External values; NULL: none), as
 * kube-controller-manager's reconcileAutoscaler: proposals per metric, the
 * largest wins; then stabilization and rate limits from hist (updated with
 * this recommendation), clamped to min / max; status with currentMetrics and
 * conditions AbleToScale / ScalingActive / ScalingLimited. Returns 0, or
 * -EINVAL when no metric could be computed (status and events still say
 * why; nothing to scale). out is freed by hpa_decision_free. */
int hpa_decide(const json_t *hpa, int32_t current, const struct hpa_pod *pods, size_t npods,
    const struct hpa_metric_in *in, struct hpa_history *hist, const struct hpa_config *cfg, int64_t now_ms,
    struct hpa_decision *out);
/* Records a scale event that happened (the scale write succeeded). */
void hpa_history_scaled(struct hpa_history *hist, const json_t *hpa, int32_t from,
    int32_t to, int64_t now_ms);
void hpa_decision_free(struct hpa_decision *d);

/* ctrl_hpa.c — the controller; usage(arg, ns, pod) returns the pod's
 * metrics.k8s.io PodMetrics (new reference) or NULL; custom serves the
 * Pods, Object and External metrics (obs_custom.c; NULL: none). */
typedef json_t *hpa_usage_fn(void *arg, const char *ns, const char *pod);
struct ctrl_hpa;
struct obs_custom;
int ctrl_hpa_start(struct api *api, int64_t sync_ms, hpa_usage_fn *usage, void *arg,
    struct obs_custom *custom, struct ctrl_hpa **out);
void ctrl_hpa_stop(struct ctrl_hpa *h);
/* The proxy holds a request for Service "ns/name" (scale from zero): the
 * HPAs with an Object metric requests_per_second on it count it as demand
 * and decide at once. */
void ctrl_hpa_activate(struct ctrl_hpa *h, const char *service);

#endif
