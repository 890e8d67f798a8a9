/* obs_traffic.h — live traffic figures per Service and revision, sampled
 * from the proxy's /metrics every few seconds by the server (obs_traffic.c)
 * and served as the traffic.v6.dev API; the controllers (canary analysis,
 * autoscaler) read the same figures through obs_traffic_query(). */
#ifndef V6_OBS_TRAFFIC_H
#define V6_OBS_TRAFFIC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct api;
struct proxy_feed;
struct obs_traffic;

#define OBS_TRAFFIC_PERIOD_MS 5000
#define OBS_MAX_BUCKETS 32
/* Samples kept for window queries: 2 min at a 1 s period, 10 min at 5 s. */
#define OBS_TRAFFIC_HISTORY 121

/* What one scrape counted for one (service, revision), summed over routes.
 * Counters only grow while the proxy lives. */
struct obs_series {
	char *service;			/* "ns/name" */
	char *revision;			/* "" when the endpoint had none */
	uint64_t requests;		/* any status */
	uint64_t status_5xx;
	size_t nbuckets;		/* le[] ascending, +Inf last when present */
	double le[OBS_MAX_BUCKETS];
	uint64_t cum[OBS_MAX_BUCKETS];	/* cumulative, as in the exposition */
	double sum_s;
	uint64_t count;
};

struct obs_sample {
	struct obs_series *series;
	size_t n;
	int64_t mono_ms;		/* when it was taken */
	struct obs_series *pods;	/* per pod: service "ns/pod", revision "" */
	size_t npods;
};

/* Parses the Prometheus text exposition (v6_proxy_requests_total and
 * v6_proxy_request_duration_seconds_* into series, their v6_proxy_pod_*
 * twins into pods; other metrics are skipped) into out
 * (zeroed first; free with obs_sample_free). Malformed lines are skipped.
 * Returns the number of series. */
size_t obs_sample_parse(const char *text, size_t len, struct obs_sample *out);
void obs_sample_free(struct obs_sample *s);
const struct obs_series *obs_sample_find(const struct obs_sample *s, const char *service,
    const char *revision);

/* Figures between two samples. */
struct obs_traffic_stats {
	uint64_t requests;		/* answered in the window */
	double window_s;
	double rps;
	double error_rate;		/* 5xx / all, 0..1 (0 without requests) */
	double success_rate;		/* 1 - error_rate (1 without requests: check requests) */
	double avg_ms;
	double p99_ms;
	int64_t age_ms;			/* query_window: how old the newest sample is */
};

/* The figures of service ("ns/name"; NULL: every service) and revision
 * (NULL: every revision)
 * from before to now. A series whose counters went down (the proxy
 * restarted) counts from zero. Returns 0, or -ENOENT (out zeroed) when now
 * has no series for them. */
int obs_traffic_compute(const struct obs_sample *before, const struct obs_sample *now,
    const char *service, const char *revision, struct obs_traffic_stats *out);
/* Prometheus' histogram_quantile(): the value below which a fraction q of
 * the observations fall, from cumulative bucket counts cum[] with upper
 * bounds le[] (ascending, +Inf last), interpolated linearly inside the
 * bucket; 0 when there is no observation. */
double obs_histogram_quantile(double q, const double *le, const uint64_t *cum, size_t n);

/* The last OBS_TRAFFIC_HISTORY samples (copies), for window queries. A
 * series the proxy stopped reporting (it drops a revision its table no
 * longer routes to) is gone after OBS_TRAFFIC_HISTORY more samples, so the
 * memory is bounded by the samples times the series live in that span. */
struct obs_history {
	struct obs_sample s[OBS_TRAFFIC_HISTORY];
	size_t n, head;			/* oldest at s[head] */
};

/* Appends a copy of s, dropping the oldest sample when full. */
void obs_history_push(struct obs_history *h, const struct obs_sample *s);
/* The newest sample into *now and the newest one at least window_ms older
 * (the oldest when none is that old) into *before; -EAGAIN with fewer than
 * two samples. */
int obs_history_window(const struct obs_history *h, int64_t window_ms,
    const struct obs_sample **before, const struct obs_sample **now);
/* Series held over every sample: what the history's memory grows with. */
size_t obs_history_series(const struct obs_history *h);
void obs_history_free(struct obs_history *h);

/* "127.0.0.1:PORT" or "[::1]:PORT" into *sa; 0 or -EINVAL. */
struct sockaddr_storage;
int obs_parse_addr(const char *s, struct sockaddr_storage *sa);

/* Starts sampling the proxy of feed every OBS_TRAFFIC_PERIOD_MS (reads only,
 * never writes the store) and serves traffic.v6.dev on api. */
int obs_traffic_start(uv_loop_t *loop, struct api *api, struct proxy_feed *feed,
    struct obs_traffic **out);
/* Stops sampling; a scrape in flight is abandoned. t is freed. */
void obs_traffic_stop(struct obs_traffic *t);
/* The ServiceTraffic object of ns/name into *out (caller decrefs): all
 * figures 0 until two samples exist. -ENOENT when the proxy never counted
 * a request for it. */
int obs_traffic_service(struct obs_traffic *t, const char *ns, const char *name, json_t **out);
/* For the controllers: the figures of the last window for service
 * ("ns/name") and revision (NULL: all). -EAGAIN before two samples exist,
 * -ENOENT when nothing was counted for them. */
int obs_traffic_query(struct obs_traffic *t, const char *service, const char *revision,
    struct obs_traffic_stats *out);
/* For canary analysis: the figures of service (NULL: every service) and
 * revision (NULL: all) between the newest sample and the newest one at least
 * window_ms older (the oldest kept, OBS_TRAFFIC_HISTORY, when none is that
 * old; out->window_s says what was covered, out->age_ms how old the newest
 * sample is, also with -ENOENT). -EAGAIN with fewer than two samples,
 * -ENOENT when nothing was counted for them. */
int obs_traffic_query_window(struct obs_traffic *t, const char *service,
    const char *revision, int64_t window_ms, struct obs_traffic_stats *out);
/* For custom.metrics.k8s.io: the figures of pod ns/name (what the proxy
 * sent it) over the last window_ms, as obs_traffic_query_window. -EAGAIN
 * with fewer than two samples, -ENOENT when the proxy does not route to it. */
int obs_traffic_pod(struct obs_traffic *t, const char *ns, const char *pod, int64_t window_ms,
    struct obs_traffic_stats *out);
/* Samples the proxy every period_ms (at least 200) from now on; the server's
 * --traffic-period. */
void obs_traffic_set_period(struct obs_traffic *t, unsigned period_ms);

#endif
