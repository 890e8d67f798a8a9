/* test_obs_traffic.c — the proxy metrics parser and the window math
 * (rates, error rate, average and P99 latency) behind traffic.v6.dev. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "obs_traffic.h"

/* Two routes of default/web revision aaa, one of revision bbb, and noise. */
static const char sample1[] =
    "# TYPE v6_proxy_requests_total counter\n"
    "v6_proxy_requests_total{service=\"default/web\",route=\"svc/default/web\",revision=\"aaa\",code=\"2xx\"} 90\n"
    "v6_proxy_requests_total{service=\"default/web\",route=\"httproute/default/web/0\",revision=\"aaa\",code=\"2xx\"} 10\n"
    "v6_proxy_requests_total{service=\"default/web\",route=\"svc/default/web\",revision=\"bbb\",code=\"5xx\"} 4\n"
    "v6_proxy_requests_total{service=\"default/web\",route=\"svc/default/web\",revision=\"bbb\",code=\"2xx\"} 6\n"
    "# TYPE v6_proxy_request_duration_seconds histogram\n"
    "v6_proxy_request_duration_seconds_bucket{service=\"default/web\",route=\"svc/default/web\",revision=\"aaa\",le=\"0.001\"} 50\n"
    "v6_proxy_request_duration_seconds_bucket{service=\"default/web\",route=\"svc/default/web\",revision=\"aaa\",le=\"0.01\"} 90\n"
    "v6_proxy_request_duration_seconds_bucket{service=\"default/web\",route=\"svc/default/web\",revision=\"aaa\",le=\"+Inf\"} 90\n"
    "v6_proxy_request_duration_seconds_sum{service=\"default/web\",route=\"svc/default/web\",revision=\"aaa\"} 0.25\n"
    "v6_proxy_request_duration_seconds_count{service=\"default/web\",route=\"svc/default/web\",revision=\"aaa\"} 90\n"
    "v6_proxy_request_duration_seconds_bucket{service=\"default/web\",route=\"httproute/default/web/0\",revision=\"aaa\",le=\"0.001\"} 10\n"
    "v6_proxy_request_duration_seconds_bucket{service=\"default/web\",route=\"httproute/default/web/0\",revision=\"aaa\",le=\"0.01\"} 10\n"
    "v6_proxy_request_duration_seconds_bucket{service=\"default/web\",route=\"httproute/default/web/0\",revision=\"aaa\",le=\"+Inf\"} 10\n"
    "v6_proxy_request_duration_seconds_sum{service=\"default/web\",route=\"httproute/default/web/0\",revision=\"aaa\"} 0.005\n"
    "v6_proxy_request_duration_seconds_count{service=\"default/web\",route=\"httproute/default/web/0\",revision=\"aaa\"} 10\n"
    "v6_proxy_upstream_errors_total{service=\"default/web\",revision=\"bbb\",kind=\"connect\"} 3\n"
    "v6_proxy_active_connections{listener=\"svc/default/web/http\"} 2\n"
    "v6_proxy_snapshot_version 42\n";

static void
test_parse_sums_routes_per_revision(void **state)
{
	struct obs_sample s;
	(void)state;

	assert_int_equal(obs_sample_parse(sample1, strlen(sample1), &s), 2);
	const struct obs_series *a = obs_sample_find(&s, "default/web", "aaa");
	const struct obs_series *b = obs_sample_find(&s, "default/web", "bbb");
	assert_non_null(a);
	assert_non_null(b);
	assert_null(obs_sample_find(&s, "default/web", "ccc"));
	assert_int_equal(a->requests, 100);
	assert_int_equal(a->status_5xx, 0);
	assert_int_equal(b->requests, 10);
	assert_int_equal(b->status_5xx, 4);
	assert_int_equal(a->count, 100);
	assert_true(fabs(a->sum_s - 0.255) < 1e-9);
	assert_int_equal(a->nbuckets, 3);
	assert_true(a->le[0] == 0.001 && a->le[1] == 0.01 && isinf(a->le[2]));
	assert_int_equal(a->cum[0], 60);
	assert_int_equal(a->cum[1], 100);
	assert_int_equal(a->cum[2], 100);
	obs_sample_free(&s);
}

static void
test_parse_escapes_and_malformed_lines(void **state)
{
	static const char text[] =
	    "v6_proxy_requests_total{service=\"ns/a\\\"b\",revision=\"r1\",code=\"5xx\"} 7\r\n"
	    "v6_proxy_requests_total{service=\"ns/x\",revision=\"r1\",code=\"2xx\"} notanumber\n"
	    "v6_proxy_requests_total{service=\"ns/y\",revision=\"r1 12\n"
	    "v6_proxy_requests_total_extra{service=\"ns/z\",revision=\"r1\",code=\"2xx\"} 5\n"
	    "\n"
	    "v6_proxy_requests_total{service=\"ns/w\",code=\"2xx\"} 3 1700000000000";
	struct obs_sample s;
	(void)state;

	assert_int_equal(obs_sample_parse(text, strlen(text), &s), 2);
	const struct obs_series *q = obs_sample_find(&s, "ns/a\"b", "r1");
	assert_non_null(q);
	assert_int_equal(q->requests, 7);
	assert_int_equal(q->status_5xx, 7);
	q = obs_sample_find(&s, "ns/w", "");
	assert_non_null(q);
	assert_int_equal(q->requests, 3);
	obs_sample_free(&s);
}

static void
test_histogram_quantile_interpolates_like_prometheus(void **state)
{
	const double le[] = { 0.001, 0.01, 0.1, INFINITY };
	const uint64_t cum[] = { 50, 90, 100, 100 };
	const uint64_t tail[] = { 0, 0, 90, 100 };
	const uint64_t none[] = { 0, 0, 0, 0 };
	(void)state;

	/* rank 50 of 100: the top of the first bucket */
	assert_true(fabs(obs_histogram_quantile(0.5, le, cum, 4) - 0.001) < 1e-12);
	/* rank 25: half-way through [0, 0.001] */
	assert_true(fabs(obs_histogram_quantile(0.25, le, cum, 4) - 0.0005) < 1e-12);
	/* rank 70: 20 of the 40 in (0.001, 0.01] */
	assert_true(fabs(obs_histogram_quantile(0.7, le, cum, 4) - 0.0055) < 1e-12);
	/* rank 99: 9 of the 10 in (0.01, 0.1] */
	assert_true(fabs(obs_histogram_quantile(0.99, le, cum, 4) - 0.091) < 1e-12);
	/* rank in +Inf: the highest finite bound */
	assert_true(fabs(obs_histogram_quantile(0.99, le, tail, 4) - 0.1) < 1e-12);
	assert_true(obs_histogram_quantile(0.99, le, none, 4) == 0);
}

static void
test_compute_rates_between_samples(void **state)
{
	/* 10 s later: aaa got 200 more (all fast), bbb 40 more, 20 of them 5xx, slow */
	static const char text2[] =
	    "v6_proxy_requests_total{service=\"default/web\",route=\"r\",revision=\"aaa\",code=\"2xx\"} 300\n"
	    "v6_proxy_requests_total{service=\"default/web\",route=\"r\",revision=\"bbb\",code=\"5xx\"} 24\n"
	    "v6_proxy_requests_total{service=\"default/web\",route=\"r\",revision=\"bbb\",code=\"2xx\"} 26\n"
	    "v6_proxy_request_duration_seconds_bucket{service=\"default/web\",route=\"r\",revision=\"aaa\",le=\"0.001\"} 260\n"
	    "v6_proxy_request_duration_seconds_bucket{service=\"default/web\",route=\"r\",revision=\"aaa\",le=\"0.01\"} 300\n"
	    "v6_proxy_request_duration_seconds_bucket{service=\"default/web\",route=\"r\",revision=\"aaa\",le=\"+Inf\"} 300\n"
	    "v6_proxy_request_duration_seconds_sum{service=\"default/web\",route=\"r\",revision=\"aaa\"} 0.355\n"
	    "v6_proxy_request_duration_seconds_count{service=\"default/web\",route=\"r\",revision=\"aaa\"} 300\n"
	    "v6_proxy_request_duration_seconds_bucket{service=\"default/web\",route=\"r\",revision=\"bbb\",le=\"0.001\"} 0\n"
	    "v6_proxy_request_duration_seconds_bucket{service=\"default/web\",route=\"r\",revision=\"bbb\",le=\"0.01\"} 0\n"
	    "v6_proxy_request_duration_seconds_bucket{service=\"default/web\",route=\"r\",revision=\"bbb\",le=\"+Inf\"} 40\n"
	    "v6_proxy_request_duration_seconds_sum{service=\"default/web\",route=\"r\",revision=\"bbb\"} 2.0\n"
	    "v6_proxy_request_duration_seconds_count{service=\"default/web\",route=\"r\",revision=\"bbb\"} 40\n";
	struct obs_sample s1, s2;
	struct obs_traffic_stats st;
	(void)state;

	obs_sample_parse(sample1, strlen(sample1), &s1);
	obs_sample_parse(text2, strlen(text2), &s2);
	s1.mono_ms = 1000;
	s2.mono_ms = 11000;

	assert_int_equal(obs_traffic_compute(&s1, &s2, "default/web", "aaa", &st), 0);
	assert_int_equal(st.requests, 200);
	assert_true(fabs(st.window_s - 10) < 1e-9);
	assert_true(fabs(st.rps - 20) < 1e-9);
	assert_true(st.error_rate == 0 && st.success_rate == 1);
	assert_true(fabs(st.avg_ms - 0.5) < 1e-9);	/* 0.1 s over 200 */
	/* 200 new: 200 at <= 1 ms (260-60), 0 above; rank 198 of 200 in [0, 1 ms] */
	assert_true(fabs(st.p99_ms - 0.99) < 1e-9);

	/* bbb had no histogram in s1: counts from zero; 40 in +Inf -> 10 ms */
	assert_int_equal(obs_traffic_compute(&s1, &s2, "default/web", "bbb", &st), 0);
	assert_int_equal(st.requests, 40);
	assert_true(fabs(st.error_rate - 0.5) < 1e-9);
	assert_true(fabs(st.success_rate - 0.5) < 1e-9);
	assert_true(fabs(st.avg_ms - 50) < 1e-9);
	assert_true(fabs(st.p99_ms - 10) < 1e-9);

	/* the whole Service: 240 requests, 20 errors */
	assert_int_equal(obs_traffic_compute(&s1, &s2, "default/web", NULL, &st), 0);
	assert_int_equal(st.requests, 240);
	assert_true(fabs(st.rps - 24) < 1e-9);
	assert_true(fabs(st.error_rate - 20.0 / 240) < 1e-9);
	assert_true(fabs(st.avg_ms - 2100.0 / 240) < 1e-9);

	assert_int_equal(obs_traffic_compute(&s1, &s2, "default/other", NULL, &st), -ENOENT);
	/* one sample only: known, all zero */
	assert_int_equal(obs_traffic_compute(NULL, &s2, "default/web", NULL, &st), 0);
	assert_true(st.rps == 0 && st.requests == 0);
	obs_sample_free(&s1);
	obs_sample_free(&s2);
}

static void
test_compute_after_proxy_restart_counts_from_zero(void **state)
{
	static const char text2[] =
	    "v6_proxy_requests_total{service=\"default/web\",route=\"r\",revision=\"aaa\",code=\"2xx\"} 5\n";
	struct obs_sample s1, s2;
	struct obs_traffic_stats st;
	(void)state;

	obs_sample_parse(sample1, strlen(sample1), &s1);
	obs_sample_parse(text2, strlen(text2), &s2);
	s1.mono_ms = 0;
	s2.mono_ms = 5000;
	assert_int_equal(obs_traffic_compute(&s1, &s2, "default/web", "aaa", &st), 0);
	assert_int_equal(st.requests, 5);
	assert_true(fabs(st.rps - 1) < 1e-9);
	obs_sample_free(&s1);
	obs_sample_free(&s2);
}

/* A scrape during rollout k: the proxy reports revision k, and k-1 for the
 * first two scrapes after the switch (it drops a revision once nothing
 * routes to it). */
static void
rollout_sample(struct obs_sample *s, int k, int scrape, int64_t mono_ms)
{
	char text[512];
	int n = snprintf(text, sizeof(text),
	    "v6_proxy_requests_total{service=\"default/web\",route=\"r\",revision=\"v%d\","
	    "code=\"2xx\"} %d\n", k, 10 * (scrape + 1));
	if (k > 0 && scrape < 2)
		snprintf(text + n, sizeof(text) - (size_t)n,
		    "v6_proxy_requests_total{service=\"default/web\",route=\"r\",revision="
		    "\"v%d\",code=\"2xx\"} 1000\n", k - 1);
	obs_sample_parse(text, strlen(text), s);
	s->mono_ms = mono_ms;
}

static bool
history_has(const struct obs_history *h, const char *revision)
{
	for (size_t i = 0; i < h->n; i++)
		if (obs_sample_find(&h->s[i], "default/web", revision))
			return true;
	return false;
}

/* 100 rollouts of 12 scrapes each: the history holds at most two series per
 * sample and forgets a revision OBS_TRAFFIC_HISTORY scrapes after the proxy
 * stopped reporting it; window queries still see the live one. */
static void
test_history_bounded_over_rollouts(void **state)
{
	struct obs_history h = { 0 };
	const struct obs_sample *before, *now;
	struct obs_traffic_stats st;
	int64_t t = 0;
	(void)state;

	for (int k = 0; k < 100; k++)
		for (int i = 0; i < 12; i++) {
			struct obs_sample s;
			rollout_sample(&s, k, i, t += 1000);
			obs_history_push(&h, &s);
			obs_sample_free(&s);
			assert_true(obs_history_series(&h) <= 2 * OBS_TRAFFIC_HISTORY);
		}
	assert_int_equal(h.n, OBS_TRAFFIC_HISTORY);
	assert_true(obs_history_series(&h) < OBS_TRAFFIC_HISTORY + 2 * 11);
	assert_false(history_has(&h, "v0"));
	assert_false(history_has(&h, "v88"));	/* last seen 122 scrapes ago */
	assert_true(history_has(&h, "v98"));
	assert_int_equal(obs_history_window(&h, 5000, &before, &now), 0);
	assert_int_equal(now->mono_ms - before->mono_ms, 5000);
	assert_int_equal(obs_traffic_compute(before, now, "default/web", "v99", &st), 0);
	assert_int_equal(st.requests, 50);
	obs_history_free(&h);
	assert_int_equal(obs_history_series(&h), 0);
}

/* The proxy's per-pod twins land in pods, keyed "namespace/pod", apart from
 * the per-revision series; the window math is the same. */
static void
test_parse_pod_series(void **state)
{
	static const char t1[] =
	    "v6_proxy_pod_requests_total{namespace=\"default\",pod=\"web-a\",code=\"2xx\"} 10\n"
	    "v6_proxy_pod_requests_total{namespace=\"default\",pod=\"web-b\",code=\"2xx\"} 0\n"
	    "v6_proxy_pod_request_duration_seconds_bucket{namespace=\"default\",pod=\"web-a\",le=\"0.1\"} 10\n"
	    "v6_proxy_pod_request_duration_seconds_bucket{namespace=\"default\",pod=\"web-a\",le=\"+Inf\"} 10\n"
	    "v6_proxy_pod_request_duration_seconds_count{namespace=\"default\",pod=\"web-a\"} 10\n"
	    "v6_proxy_pod_requests_total{pod=\"no-namespace\",code=\"2xx\"} 5\n";
	static const char t2[] =
	    "v6_proxy_pod_requests_total{namespace=\"default\",pod=\"web-a\",code=\"2xx\"} 110\n"
	    "v6_proxy_pod_requests_total{namespace=\"default\",pod=\"web-a\",code=\"5xx\"} 10\n"
	    "v6_proxy_pod_requests_total{namespace=\"default\",pod=\"web-b\",code=\"2xx\"} 0\n"
	    "v6_proxy_pod_request_duration_seconds_bucket{namespace=\"default\",pod=\"web-a\",le=\"0.1\"} 20\n"
	    "v6_proxy_pod_request_duration_seconds_bucket{namespace=\"default\",pod=\"web-a\",le=\"1\"} 120\n"
	    "v6_proxy_pod_request_duration_seconds_bucket{namespace=\"default\",pod=\"web-a\",le=\"+Inf\"} 120\n"
	    "v6_proxy_pod_request_duration_seconds_count{namespace=\"default\",pod=\"web-a\"} 120\n";
	struct obs_sample a, b;
	struct obs_traffic_stats st;
	(void)state;

	assert_int_equal(obs_sample_parse(t1, strlen(t1), &a), 0);
	assert_int_equal(a.npods, 2);
	assert_int_equal(obs_sample_parse(t2, strlen(t2), &b), 0);
	a.mono_ms = 1000;
	b.mono_ms = 11000;
	struct obs_sample pa = { .series = a.pods, .n = a.npods, .mono_ms = a.mono_ms };
	struct obs_sample pb = { .series = b.pods, .n = b.npods, .mono_ms = b.mono_ms };
	assert_int_equal(obs_traffic_compute(&pa, &pb, "default/web-a", NULL, &st), 0);
	assert_true(fabs(st.rps - 11.0) < 1e-9);		/* 110 in 10 s */
	assert_true(st.p99_ms > 900 && st.p99_ms <= 1000);	/* 100 of 110 in (0.1, 1] */
	assert_int_equal(obs_traffic_compute(&pa, &pb, "default/web-b", NULL, &st), 0);
	assert_true(st.rps == 0 && st.p99_ms == 0);
	assert_int_equal(obs_traffic_compute(&pa, &pb, "default/web-c", NULL, &st), -ENOENT);
	obs_sample_free(&a);
	obs_sample_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_sums_routes_per_revision),
		cmocka_unit_test(test_parse_escapes_and_malformed_lines),
		cmocka_unit_test(test_histogram_quantile_interpolates_like_prometheus),
		cmocka_unit_test(test_compute_rates_between_samples),
		cmocka_unit_test(test_compute_after_proxy_restart_counts_from_zero),
		cmocka_unit_test(test_history_bounded_over_rollouts),
		cmocka_unit_test(test_parse_pod_series),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
