/* vpa.h — the VerticalPodAutoscaler (autoscaling.k8s.io/v1, modes Off and
 * Initial): decaying usage histograms and the recommender's estimation as
 * upstream's VPA recommender has them (vpa_hist.c, pure), the admission of
 * new pods in Initial mode (vpa_admit.c) and the recommender controller on
 * the controller core (ctrl_vpa.c). docs/vpa.md says what is delivered. */
#ifndef V6_VPA_H
#define V6_VPA_H

#include "ctrl.h"

enum vpa_res { VPA_CPU, VPA_MEM, VPA_NRES };

/* ---- vpa_hist.c: histograms and estimation (pure) ----------------------- */

/* Exponential buckets as upstream's: CPU from 0.01 core, memory from 1e7
 * bytes, each bucket 5 % larger, up to 1000 cores / 1e12 bytes: 176 buckets
 * (a container's history costs two of these, whatever its age). */
#define VPA_NBUCKETS 176
#define VPA_CHECKPOINT_WEIGHT 10000	/* MaxCheckpointWeight */

/* A decaying histogram: a sample at t weighs 2^((t - ref) / half_life)
 * (t truncated to the hour), so old samples count half per half-life. */
struct vpa_hist {
	double first;			/* the first bucket's size */
	double w[VPA_NBUCKETS];
	double total;
	int min_b, max_b;		/* non-empty range; min_b > max_b: empty */
	int64_t ref_ms;			/* reference timestamp */
	int64_t half_life_ms;
};
void vpa_hist_init(struct vpa_hist *h, enum vpa_res r, int64_t half_life_ms);
int vpa_hist_bucket(const struct vpa_hist *h, double v);
double vpa_hist_bucket_start(const struct vpa_hist *h, int b);
void vpa_hist_add(struct vpa_hist *h, double v, double weight, int64_t t_ms);
void vpa_hist_sub(struct vpa_hist *h, double v, double weight, int64_t t_ms);
bool vpa_hist_empty(const struct vpa_hist *h);
/* The end of the bucket where the cumulative weight reaches p (0..1); 0
 * when empty. */
double vpa_hist_percentile(const struct vpa_hist *h, double p);
/* upstream's HistogramCheckpoint {referenceTimestamp, bucketWeights
 * {"i": 1..10000}, totalWeight} (new reference), and back. Load returns 0
 * or -EINVAL (h unchanged). */
json_t *vpa_hist_save(const struct vpa_hist *h);
int vpa_hist_load(struct vpa_hist *h, const json_t *cp);

/* The recommender's settings (upstream's flags and constants). */
struct vpa_config {
	int64_t cpu_half_life_ms, mem_half_life_ms;	/* 24 h */
	int64_t mem_window_ms;		/* memory aggregation interval, 24 h */
	int64_t history_ms;		/* a history this long idle expires: 8 days */
	double margin;			/* safety margin fraction, 0.15 */
	double p_target, p_lower, p_upper;	/* 0.9, 0.5, 0.95 */
	double pod_min[VPA_NRES];	/* 0.025 cores, 250 MiB per pod */
	double oom_ratio, oom_min_bump;	/* 1.2, 100 MiB */
	bool confidence;		/* scale bounds by the history's length */
};
void vpa_config_default(struct vpa_config *cfg);

/* One container name of one VPA: upstream's AggregateContainerState
 * (units: cores, bytes). */
struct vpa_state {
	struct vpa_hist cpu, mem;
	int64_t first_ms, last_ms;	/* first and last CPU sample start */
	int64_t samples;		/* CPU samples added */
	int64_t seen_ms;		/* the newest sample of either kind, or OOM kill */
};
/* One container of one pod: the memory-peak window of upstream's
 * ContainerState. Zeroed is new. */
struct vpa_peak {
	int64_t win_end_ms;		/* the window's end (0: none yet) */
	double mem_peak, oom_peak;	/* the window's peaks */
	int64_t last_mem_ms;
};
void vpa_state_init(struct vpa_state *s, const struct vpa_config *cfg);
/* A CPU sample (cores) weighted by the request (cores; >= 0.1). */
void vpa_state_add_cpu(struct vpa_state *s, double cores, double request, int64_t t_ms);
/* A memory sample (bytes) of the pod container pk: one peak per window in
 * s. Returns false when older than pk's last one (ignored). */
bool vpa_state_add_mem(struct vpa_state *s, struct vpa_peak *pk, double bytes, int64_t t_ms,
    const struct vpa_config *cfg);
/* An OOM kill at t_ms with the container's memory request (bytes, 0:
 * none): a peak of max(used + oom_min_bump, used * oom_ratio), used =
 * max(request, the window's peak). */
void vpa_state_oom(struct vpa_state *s, struct vpa_peak *pk, double request, int64_t t_ms,
    const struct vpa_config *cfg);
/* upstream's isExpired: no sample for the history's length (the container
 * is gone; its history is dropped, as its checkpoint). */
bool vpa_state_expired(const struct vpa_state *s, int64_t now_ms,
    const struct vpa_config *cfg);
/* upstream's VerticalPodAutoscalerCheckpoint status (version v3), and back. */
json_t *vpa_state_save(const struct vpa_state *s, int64_t now_ms);
int vpa_state_load(struct vpa_state *s, const json_t *status, const struct vpa_config *cfg);

/* Target, lower and upper bound of one container (cores, bytes): the
 * percentiles plus the margin, bounds scaled by the confidence, at least
 * the pod minimums split over ncontainers. Upstream's estimators. */
struct vpa_estimate {
	double target[VPA_NRES], lower[VPA_NRES], upper[VPA_NRES];
};
void vpa_estimate(const struct vpa_state *s, size_t ncontainers,
    const struct vpa_config *cfg, struct vpa_estimate *out);

/* A quantity for cores ("25m") or bytes ("262144k"), as upstream prints
 * them (milli-cores truncated; bytes in canonical decimal SI). */
void vpa_quantity(enum vpa_res r, double v, char *out, size_t len);

/* ---- vpa_policy.c: the spec's policies (pure) ------------------------------ */

/* The container policy of vpa for container name (exact, else "*"), or
 * NULL (borrowed). */
const json_t *vpa_container_policy(const json_t *vpa, const char *name);
/* status.recommendation.containerRecommendations[] entry for container
 * name from its estimate e (new reference), with upstream's policy: NULL
 * for mode Off; only controlledResources; target, lowerBound and
 * upperBound capped to minAllowed / maxAllowed; uncappedTarget the
 * estimate. */
json_t *vpa_container_recommendation(const json_t *vpa, const char *name,
    const struct vpa_estimate *e);
/* The container named name of a pod spec (or a template's spec), or NULL. */
const json_t *vpa_spec_container(const json_t *podspec, const char *name);
/* The updateMode (upstream's default: "Auto"). */
const char *vpa_update_mode(const json_t *vpa);
/* The default recommender serves vpa (spec.recommenders absent, or one is
 * named "default"). */
bool vpa_uses_default_recommender(const json_t *vpa);

/* ---- vpa_admit.c: new pods in Initial mode ------------------------------ */

/* pod (ns) is being created: when an Initial-mode VPA of ns targets its
 * controller (Deployment or Rollout through a ReplicaSet, StatefulSet,
 * DaemonSet, ReplicaSet) and has a recommendation, the pod's requests become
 * the targets (limits scaled in proportion for RequestsAndLimits) and it
 * gets the annotations vpaUpdates and vpaObservedContainers, as upstream's
 * admission controller. vpas: the namespace's VPAs; owners: resolves an
 * owner reference (ns, kind, name -> object, new reference or NULL). */
typedef json_t *vpa_owner_fn(void *arg, const char *ns, const char *kind,
    const char *name);
void vpa_admit_pod(json_t *pod, const json_t *vpas, vpa_owner_fn *owner, void *arg);
/* The target of a pod's controller chain that vpa's targetRef names. */
bool vpa_targets_pod(const json_t *vpa, const json_t *pod, vpa_owner_fn *owner,
    void *arg);

/* ---- ctrl_vpa.c: the recommender ------------------------------------------ */

/* The usage of pod ns/name (metrics.k8s.io PodMetrics, new reference) or NULL. */
typedef json_t *vpa_usage_fn(void *arg, const char *ns, const char *pod);
struct ctrl_vpa;
/* Every interval_ms: samples the pods of each VPA's target, updates the
 * histograms, writes status.recommendation; every checkpoint_ms a
 * VerticalPodAutoscalerCheckpoint per container whose history changed. */
int ctrl_vpa_start(struct api *api, int64_t interval_ms, int64_t checkpoint_ms,
    vpa_usage_fn *usage, void *arg, struct ctrl_vpa **out);
void ctrl_vpa_stop(struct ctrl_vpa *v);

#endif
