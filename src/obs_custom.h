/* obs_custom.h — the metrics APIs an autoscaler reads beyond metrics.k8s.io:
 * custom.metrics.k8s.io/v1beta2 (requests/s and p99 latency per pod and per
 * Service, from the proxy's own counters) and external.metrics.k8s.io/v1beta1
 * (PromQL to the --prometheus-url Prometheus), in the shape a
 * prometheus-adapter serves them; the HPA controller reads the same values. */
#ifndef V6_OBS_CUSTOM_H
#define V6_OBS_CUSTOM_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct api;
struct obs_traffic;
struct obs_custom;

/* Serves both groups on api. traffic may be NULL (no proxy: no custom
 * values); prometheus_url ("http://IP:PORT", or NULL: no external values). */
int obs_custom_start(uv_loop_t *loop, struct api *api, struct obs_traffic *traffic,
    const char *prometheus_url, struct obs_custom **out);
/* Cancels queries in flight; c is freed. */
void obs_custom_stop(struct obs_custom *c);

/* The value of metric (requests_per_second, request_duration_p99_seconds)
 * of the object kind ("Pod", "Service") ns/name, in milli-units. 0, or
 * -ENOENT (unknown metric or object, or nothing measured yet) with why. */
int obs_custom_value(struct obs_custom *c, const char *kind, const char *ns, const char *name,
    const char *metric, int64_t *milli, char *why, size_t whylen);
/* The external metric's value: the sum of the series that the PromQL
 * `metric{selector}` returns (a LabelSelector, NULL: all), in milli-units,
 * from the last answer of Prometheus. Each call asks again in the
 * background, so the value is at most one caller's period old. 0, or
 * -EAGAIN (no answer yet), -ENOENT / -EINVAL (no Prometheus, a failed query,
 * a selector PromQL cannot say) with why. */
int obs_custom_external(struct obs_custom *c, const char *ns, const char *metric,
    const json_t *selector, int64_t *milli, char *why, size_t whylen);

#endif
