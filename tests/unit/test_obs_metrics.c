/* test_obs_metrics.c — the exposition writer (escaping, HELP/TYPE, histogram
 * form, OpenMetrics naming and # EOF, streaming in pieces), the
 * kube-state-metrics / Argo mapping of a few objects, the http_sd target
 * list, and node_exporter readings from a made-up /proc. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "obs_metrics.h"

static void
assert_has(const char *text, const char *want)
{
	if (!strstr(text, want))
		fail_msg("missing:\n%s\n--- in ---\n%s", want, text);
}

static void
assert_lacks(const char *text, const char *bad)
{
	if (strstr(text, bad))
		fail_msg("unexpected:\n%s\n--- in ---\n%s", bad, text);
}

static void
test_labels_are_escaped(void **state)
{
	struct buf b = BUF_INIT;
	struct om_writer w;
	(void)state;
	om_writer_init(&w, &b, false);
	om_family(&w, "x_info", OM_GAUGE, "a help with \\ and\nnewline");
	om_sample(&w, "x_info", (const char *const[]){ "a", "q\"uote", "b", "back\\slash",
	    "c", "new\nline", "skipped", NULL, NULL }, 1);
	om_sample(&w, "x_info", NULL, 2.5);
	assert_int_equal(om_finish(&w), 0);
	assert_has(b.data, "# HELP x_info a help with \\\\ and\\nnewline\n# TYPE x_info gauge\n");
	assert_has(b.data, "x_info{a=\"q\\\"uote\",b=\"back\\\\slash\",c=\"new\\nline\"} 1\n");
	assert_has(b.data, "x_info 2.5\n");
	assert_lacks(b.data, "skipped");
	assert_lacks(b.data, "# EOF");
	buf_free(&b);
}

static void
test_histogram_is_cumulative_with_inf_sum_count(void **state)
{
	static const double le[] = { 0.1, 1 };
	uint64_t buckets[3] = { 0 };
	struct om_hist h = { le, 2, buckets, 0, 0 };
	struct buf b = BUF_INIT;
	struct om_writer w;
	(void)state;
	om_hist_observe(&h, 0.05);
	om_hist_observe(&h, 0.1);	/* le is inclusive */
	om_hist_observe(&h, 0.5);
	om_hist_observe(&h, 7);
	om_writer_init(&w, &b, false);
	om_family(&w, "lat_seconds", OM_HISTOGRAM, "Latency.");
	om_histogram(&w, "lat_seconds", (const char *const[]){ "verb", "GET", NULL }, &h);
	om_finish(&w);
	assert_has(b.data, "# TYPE lat_seconds histogram\n"
	    "lat_seconds_bucket{verb=\"GET\",le=\"0.1\"} 2\n"
	    "lat_seconds_bucket{verb=\"GET\",le=\"1\"} 3\n"
	    "lat_seconds_bucket{verb=\"GET\",le=\"+Inf\"} 4\n"
	    "lat_seconds_sum{verb=\"GET\"} 7.6500000000000004\n"
	    "lat_seconds_count{verb=\"GET\"} 4\n");
	buf_free(&b);
}

static void
test_openmetrics_counter_family_and_eof(void **state)
{
	struct buf b = BUF_INIT;
	struct om_writer w;
	(void)state;
	assert_true(om_accepts_openmetrics("application/openmetrics-text; version=1.0.0,"
	    "text/plain;version=0.0.4;q=0.5"));
	assert_false(om_accepts_openmetrics("text/plain"));
	assert_false(om_accepts_openmetrics(NULL));
	om_writer_init(&w, &b, true);
	om_family(&w, "reqs_total", OM_COUNTER, "Requests.");
	om_sample(&w, "reqs_total", NULL, 3);
	om_finish(&w);
	assert_string_equal(b.data, "# HELP reqs Requests.\n# TYPE reqs counter\n"
	    "reqs_total 3\n# EOF\n");
	buf_free(&b);
}

struct sink {
	size_t calls, bytes;
	struct buf all;
};

static int
sink_fn(void *arg, const char *data, size_t len)
{
	struct sink *s = arg;
	s->calls++;
	s->bytes += len;
	buf_append(&s->all, data, len);
	return 0;
}

static void
test_large_page_streams_in_pieces(void **state)
{
	struct buf b = BUF_INIT;
	struct sink s = { 0 };
	struct om_writer w;
	char name[32];
	(void)state;
	om_writer_init(&w, &b, false);
	w.fn = sink_fn;
	w.arg = &s;
	om_family(&w, "many", OM_GAUGE, "Many series.");
	for (int i = 0; i < 20000; i++) {
		snprintf(name, sizeof name, "p%d", i);
		om_sample(&w, "many", (const char *const[]){ "pod", name, NULL }, i);
		assert_true(b.len < w.flush_at + 256);	/* never the whole page */
	}
	assert_int_equal(om_finish(&w), 0);
	assert_true(s.calls > 5);
	assert_int_equal(s.bytes, w.bytes);
	assert_has(s.all.data, "many{pod=\"p19999\"} 19999\n");
	buf_free(&b);
	buf_free(&s.all);
}

static const char pod_json[] = "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{"
    "\"name\":\"web-5d8f-abcde\",\"namespace\":\"shop\",\"uid\":\"u-1\","
    "\"labels\":{\"app\":\"web\",\"pod-template-hash\":\"5d8f\"},"
    "\"annotations\":{\"prometheus.io/scrape\":\"true\",\"prometheus.io/port\":\"9100\","
    "\"prometheus.io/path\":\"/m\"},"
    "\"ownerReferences\":[{\"kind\":\"ReplicaSet\",\"name\":\"web-5d8f\",\"controller\":true}]},"
    "\"spec\":{\"nodeName\":\"n1\",\"containers\":[{\"name\":\"app\",\"image\":\"testapp\","
    "\"ports\":[{\"containerPort\":9100}],"
    "\"resources\":{\"requests\":{\"cpu\":\"250m\",\"memory\":\"64Mi\"},"
    "\"limits\":{\"memory\":\"128Mi\"}}},{\"name\":\"side\",\"image\":\"busybox\"}]},"
    "\"status\":{\"phase\":\"Running\",\"podIP\":\"127.1.0.7\","
    "\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"}],"
    "\"containerStatuses\":[{\"name\":\"app\",\"ready\":true,\"restartCount\":3,"
    "\"state\":{\"running\":{}},\"lastState\":{\"terminated\":{\"reason\":\"Error\"}}},"
    "{\"name\":\"side\",\"ready\":false,\"restartCount\":0,"
    "\"state\":{\"waiting\":{\"reason\":\"CrashLoopBackOff\"}}}]}}";

static char *
render_kind(const char *kind, const char *json)
{
	struct buf b = BUF_INIT;
	struct om_writer w;
	json_t *items = json_array();
	json_array_append_new(items, json_loads(json, 0, NULL));
	assert_non_null(json_array_get(items, 0));
	om_writer_init(&w, &b, false);
	assert_non_null(ksm_kind_find(kind));
	ksm_write(&w, ksm_kind_find(kind), items);
	om_finish(&w);
	json_decref(items);
	return buf_steal(&b);
}

static void
test_ksm_pod_mapping(void **state)
{
	char *t = render_kind("Pod", pod_json);
	(void)state;
	assert_has(t, "kube_pod_info{namespace=\"shop\",pod=\"web-5d8f-abcde\",uid=\"u-1\","
	    "host_ip=\"\",pod_ip=\"127.1.0.7\",node=\"n1\",created_by_kind=\"ReplicaSet\","
	    "created_by_name=\"web-5d8f\",priority_class=\"\",host_network=\"false\"} 1\n");
	assert_has(t, "kube_pod_status_phase{namespace=\"shop\",pod=\"web-5d8f-abcde\","
	    "phase=\"Running\"} 1\n");
	assert_has(t, "kube_pod_status_phase{namespace=\"shop\",pod=\"web-5d8f-abcde\","
	    "phase=\"Pending\"} 0\n");
	assert_has(t, "kube_pod_status_ready{namespace=\"shop\",pod=\"web-5d8f-abcde\","
	    "condition=\"false\"} 1\n");
	assert_has(t, "# TYPE kube_pod_container_status_restarts_total counter\n"
	    "kube_pod_container_status_restarts_total{namespace=\"shop\",pod=\"web-5d8f-abcde\","
	    "container=\"app\"} 3\n");
	assert_has(t, "kube_pod_container_status_running{namespace=\"shop\","
	    "pod=\"web-5d8f-abcde\",container=\"side\"} 0\n");
	assert_has(t, "kube_pod_container_status_waiting_reason{namespace=\"shop\","
	    "pod=\"web-5d8f-abcde\",container=\"side\",reason=\"CrashLoopBackOff\"} 1\n");
	assert_has(t, "kube_pod_container_status_last_terminated_reason{namespace=\"shop\","
	    "pod=\"web-5d8f-abcde\",container=\"app\",reason=\"Error\"} 1\n");
	assert_has(t, "kube_pod_container_resource_requests{namespace=\"shop\","
	    "pod=\"web-5d8f-abcde\",container=\"app\",node=\"n1\",resource=\"cpu\","
	    "unit=\"core\"} 0.25\n");
	assert_has(t, "kube_pod_container_resource_limits{namespace=\"shop\","
	    "pod=\"web-5d8f-abcde\",container=\"app\",node=\"n1\",resource=\"memory\","
	    "unit=\"byte\"} 134217728\n");
	assert_has(t, "kube_pod_owner{namespace=\"shop\",pod=\"web-5d8f-abcde\","
	    "owner_kind=\"ReplicaSet\",owner_name=\"web-5d8f\",owner_is_controller=\"true\"} 1\n");
	/* uid only on kube_pod_info */
	assert_lacks(t, "kube_pod_status_phase{namespace=\"shop\",pod=\"web-5d8f-abcde\",uid");
	free(t);
}

static void
test_ksm_deployment_and_rollout(void **state)
{
	char *t = render_kind("Deployment", "{\"metadata\":{\"name\":\"web\","
	    "\"namespace\":\"shop\",\"generation\":4},\"spec\":{},\"status\":{\"replicas\":3,"
	    "\"availableReplicas\":2,\"unavailableReplicas\":1,\"observedGeneration\":4}}");
	(void)state;
	assert_has(t, "kube_deployment_spec_replicas{namespace=\"shop\",deployment=\"web\"} 1\n");
	assert_has(t, "kube_deployment_status_replicas_available{namespace=\"shop\","
	    "deployment=\"web\"} 2\n");
	assert_has(t, "kube_deployment_status_replicas_updated{namespace=\"shop\","
	    "deployment=\"web\"} 0\n");
	assert_has(t, "kube_deployment_metadata_generation{namespace=\"shop\","
	    "deployment=\"web\"} 4\n");
	free(t);
	t = render_kind("Rollout", "{\"metadata\":{\"name\":\"shop\",\"namespace\":\"prod\"},"
	    "\"spec\":{\"replicas\":4,\"strategy\":{\"canary\":{}}},"
	    "\"status\":{\"phase\":\"Paused\",\"availableReplicas\":3,\"updatedReplicas\":1}}");
	assert_has(t, "rollout_info{namespace=\"prod\",name=\"shop\",strategy=\"canary\","
	    "traffic_router=\"\",phase=\"Paused\"} 1\n");
	assert_has(t, "rollout_info_replicas_unavailable{namespace=\"prod\",name=\"shop\"} 1\n");
	assert_has(t, "rollout_info_replicas_desired{namespace=\"prod\",name=\"shop\"} 4\n");
	assert_has(t, "rollout_phase{namespace=\"prod\",name=\"shop\",strategy=\"canary\","
	    "phase=\"Paused\"} 1\n");
	assert_has(t, "rollout_phase{namespace=\"prod\",name=\"shop\",strategy=\"canary\","
	    "phase=\"Healthy\"} 0\n");
	free(t);
	t = render_kind("AnalysisRun", "{\"metadata\":{\"name\":\"r1\",\"namespace\":\"prod\"},"
	    "\"spec\":{\"metrics\":[{\"name\":\"errors\",\"provider\":{\"prometheus\":{}}}]},"
	    "\"status\":{\"phase\":\"Failed\",\"metricResults\":[{\"name\":\"errors\","
	    "\"phase\":\"Failed\"}]}}");
	assert_has(t, "analysis_run_info{namespace=\"prod\",name=\"r1\",phase=\"Failed\"} 1\n");
	assert_has(t, "analysis_run_metric_type{namespace=\"prod\",name=\"r1\",metric=\"errors\","
	    "type=\"Prometheus\"} 1\n");
	assert_has(t, "analysis_run_metric_phase{namespace=\"prod\",name=\"r1\","
	    "metric=\"errors\",type=\"Prometheus\",dry_run=\"false\",phase=\"Failed\"} 1\n");
	free(t);
}

static void
test_ksm_other_kinds(void **state)
{
	char *t;
	(void)state;
	t = render_kind("StatefulSet", "{\"metadata\":{\"name\":\"db\",\"namespace\":\"d\"},"
	    "\"spec\":{\"replicas\":3},\"status\":{\"readyReplicas\":2}}");
	assert_has(t, "kube_statefulset_replicas{namespace=\"d\",statefulset=\"db\"} 3\n");
	assert_has(t, "kube_statefulset_status_replicas_ready{namespace=\"d\",statefulset=\"db\"} 2\n");
	free(t);
	t = render_kind("DaemonSet", "{\"metadata\":{\"name\":\"agent\",\"namespace\":\"d\"},"
	    "\"status\":{\"desiredNumberScheduled\":1,\"numberReady\":1}}");
	assert_has(t, "kube_daemonset_status_desired_number_scheduled{namespace=\"d\","
	    "daemonset=\"agent\"} 1\n");
	assert_has(t, "kube_daemonset_status_number_unavailable{namespace=\"d\","
	    "daemonset=\"agent\"} 0\n");
	free(t);
	t = render_kind("Service", "{\"metadata\":{\"name\":\"web\",\"namespace\":\"d\","
	    "\"uid\":\"s1\"},\"spec\":{\"type\":\"NodePort\",\"clusterIP\":\"127.2.0.9\"}}");
	assert_has(t, "kube_service_info{namespace=\"d\",service=\"web\",uid=\"s1\","
	    "cluster_ip=\"127.2.0.9\",external_name=\"\",load_balancer_ip=\"\"} 1\n");
	assert_has(t, "kube_service_spec_type{namespace=\"d\",service=\"web\",type=\"NodePort\"} 1\n");
	free(t);
	t = render_kind("PersistentVolumeClaim", "{\"metadata\":{\"name\":\"data\","
	    "\"namespace\":\"d\"},\"spec\":{},\"status\":{\"phase\":\"Bound\"}}");
	assert_has(t, "kube_persistentvolumeclaim_status_phase{namespace=\"d\","
	    "persistentvolumeclaim=\"data\",phase=\"Bound\"} 1\n");
	assert_has(t, "kube_persistentvolumeclaim_status_phase{namespace=\"d\","
	    "persistentvolumeclaim=\"data\",phase=\"Pending\"} 0\n");
	free(t);
	t = render_kind("Namespace", "{\"metadata\":{\"name\":\"old\"},"
	    "\"status\":{\"phase\":\"Terminating\"}}");
	assert_has(t, "kube_namespace_status_phase{namespace=\"old\",phase=\"Active\"} 0\n"
	    "kube_namespace_status_phase{namespace=\"old\",phase=\"Terminating\"} 1\n");
	free(t);
}

static void
test_sd_lists_v6_and_annotated_pods(void **state)
{
	json_t *pods = json_array(), *out;
	char *s;
	(void)state;
	json_array_append_new(pods, json_loads(pod_json, 0, NULL));
	/* not annotated: left out */
	json_array_append_new(pods, json_loads("{\"metadata\":{\"name\":\"x\",\"namespace\":"
	    "\"d\"},\"spec\":{\"containers\":[{\"name\":\"c\",\"ports\":[{\"containerPort\":"
	    "80}]}]},\"status\":{\"phase\":\"Running\",\"podIP\":\"127.1.0.8\"}}", 0, NULL));
	out = obs_sd_targets(pods, "127.0.0.1:6443", false, "127.0.0.1:9901");
	s = json_dumps(out, JSON_COMPACT);
	assert_has(s, "{\"targets\":[\"127.0.0.1:6443\"],\"labels\":{\"job\":\"v6-server\","
	    "\"__metrics_path__\":\"/metrics\"");
	assert_has(s, "{\"targets\":[\"127.0.0.1:9901\"],\"labels\":{\"job\":\"v6-proxy\"");
	assert_has(s, "{\"targets\":[\"127.1.0.7:9100\"],\"labels\":{\"__meta_v6_namespace\":"
	    "\"shop\",\"__meta_v6_pod\":\"web-5d8f-abcde\",\"__meta_v6_container\":\"app\","
	    "\"__meta_v6_app\":\"web\",\"__meta_v6_revision\":\"5d8f\",\"__meta_v6_node\":\"n1\","
	    "\"__metrics_path__\":\"/m\",\"__scheme__\":\"http\"}}");
	assert_lacks(s, "127.1.0.8");
	assert_int_equal(json_array_size(out), 5);
	free(s);
	json_decref(out);
	json_decref(pods);
}

static void
write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void
test_node_exporter_names_from_proc(void **state)
{
	char dir[] = "/tmp/v6-obs-proc-XXXXXX", sub[600];
	struct buf b = BUF_INIT;
	struct om_writer w;
	long hz = sysconf(_SC_CLK_TCK);
	char want[128];
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(sub, sizeof sub, "%s/net", dir);
	mkdir(sub, 0755);
	write_file(dir, "stat", "cpu  10 0 0 0 0 0 0 0 0 0\ncpu0 200 1 2 300 4 5 6 7 0 0\n");
	write_file(dir, "meminfo", "MemTotal:       1000 kB\nMemAvailable:    250 kB\n");
	write_file(dir, "loadavg", "0.50 0.25 0.10 1/100 42\n");
	write_file(dir, "net/dev", "Inter-|   Receive\n face |bytes\n"
	    "    lo: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n");
	write_file(dir, "diskstats", "   8       0 sda 1 0 8 0 2 0 16 0 0 0 0\n");
	om_writer_init(&w, &b, false);
	host_write_node(&w, dir, NULL);
	om_finish(&w);
	snprintf(want, sizeof want, "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} %g\n",
	    300.0 / (double)hz);
	assert_has(b.data, want);
	assert_has(b.data, "node_memory_MemTotal_bytes 1024000\n");
	assert_has(b.data, "node_memory_MemAvailable_bytes 256000\n");
	assert_has(b.data, "node_load5 0.25\n");
	assert_has(b.data, "node_network_transmit_bytes_total{device=\"lo\"} 2000\n");
	assert_has(b.data, "node_disk_read_bytes_total{device=\"sda\"} 4096\n");
	assert_has(b.data, "node_disk_written_bytes_total{device=\"sda\"} 8192\n");
	buf_free(&b);
	snprintf(sub, sizeof sub, "rm -rf %s", dir);
	assert_int_equal(system(sub), 0);
}

/* cAdvisor's names from a container's cgroup files: v1 (cpuacct, cpu,
 * memory) and v2 (one directory with cgroup.controllers), and the
 * runtime's /proc reading when there is no cgroup at all. */
static void
test_cadvisor_names_from_cgroups(void **state)
{
	char v1[] = "/tmp/v6-obs-cg1-XXXXXX", v2[] = "/tmp/v6-obs-cg2-XXXXXX", cmd[128];
	struct buf b = BUF_INIT;
	struct om_writer w;
	(void)state;
	assert_non_null(mkdtemp(v1));
	assert_non_null(mkdtemp(v2));
	write_file(v1, "cpuacct.usage", "2500000000\n");
	write_file(v1, "cpu.stat", "nr_periods 40\nnr_throttled 4\nthrottled_time 300000000\n");
	write_file(v1, "memory.usage_in_bytes", "1000000\n");
	write_file(v1, "memory.stat", "total_rss 600000\ntotal_inactive_file 200000\n");
	write_file(v1, "memory.limit_in_bytes", "9223372036854771712\n");
	write_file(v1, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
	write_file(v2, "cgroup.controllers", "cpu memory pids\n");
	write_file(v2, "cpu.stat", "usage_usec 1500000\nnr_periods 10\nnr_throttled 1\n"
	    "throttled_usec 250000\n");
	write_file(v2, "memory.current", "4096000\n");
	write_file(v2, "memory.stat", "anon 1024000\ninactive_file 96000\n");
	write_file(v2, "memory.max", "134217728\n");
	write_file(v2, "memory.events", "oom 0\noom_kill 0\n");
	struct host_ctr c[3] = {
		{ "ns", "a", "app", "img", v1, v1, v1, false, 0, 0, 0 },
		{ "ns", "b", "app", "img", v2, v2, v2, false, 0, 0, 0 },
		{ "ns", "c", "app", "img", NULL, NULL, NULL, true, 7000000000ull, 123456, 0 },
	};
	om_writer_init(&w, &b, false);
	host_write_containers(&w, c, 3);
	om_finish(&w);
#define L(p) "{namespace=\"ns\",pod=\"" p "\",container=\"app\",image=\"img\"} "
	assert_has(b.data, "container_cpu_usage_seconds_total" L("a") "2.5\n");
	assert_has(b.data, "container_cpu_usage_seconds_total" L("b") "1.5\n");
	assert_has(b.data, "container_cpu_usage_seconds_total" L("c") "7\n");
	assert_has(b.data, "container_memory_working_set_bytes" L("a") "800000\n");
	assert_has(b.data, "container_memory_working_set_bytes" L("b") "4000000\n");
	assert_has(b.data, "container_memory_working_set_bytes" L("c") "123456\n");
	assert_has(b.data, "container_memory_usage_bytes" L("a") "1000000\n");
	assert_has(b.data, "container_memory_rss" L("b") "1024000\n");
	assert_has(b.data, "container_cpu_cfs_throttled_periods_total" L("a") "4\n");
	assert_has(b.data, "container_cpu_cfs_throttled_seconds_total" L("a") "0.29999999999999999\n");
	assert_has(b.data, "container_cpu_cfs_throttled_seconds_total" L("b") "0.25\n");
	assert_has(b.data, "container_cpu_cfs_periods_total" L("b") "10\n");
	assert_has(b.data, "container_oom_events_total" L("a") "2\n");
	assert_has(b.data, "container_spec_memory_limit_bytes" L("a") "0\n");
	assert_has(b.data, "container_spec_memory_limit_bytes" L("b") "134217728\n");
	assert_lacks(b.data, "container_memory_usage_bytes" L("c"));
#undef L
	buf_free(&b);
	snprintf(cmd, sizeof cmd, "rm -rf %s %s", v1, v2);
	assert_int_equal(system(cmd), 0);
}

static void
mkdirs(const char *root, const char *rel)
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "mkdir -p %s/%s", root, rel);
	assert_int_equal(system(cmd), 0);
}

/* A /proc of its own: pod a's two containers share a network namespace
 * (one series per interface, lo left out) and have blkio v1 and an overlay
 * upper dir; pod b is on the host's network (no network series) with v2's
 * io.stat. */
static void
test_cadvisor_network_and_fs(void **state)
{
	char t[] = "/tmp/v6-obs-proc-XXXXXX", path[512], path2[512], text[1024], cmd[128];
	struct buf b = BUF_INIT;
	struct om_writer w;
	(void)state;
	assert_non_null(mkdtemp(t));
	const char *dirs[] = { "self/ns", "101/ns", "101/net", "102/ns", "201/ns",
		"cg/blkio/v6/a", "cg/unified/v6/b", "upper/etc" };
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
		mkdirs(t, dirs[i]);
	write_file(t, "self/ns/net", "");
	write_file(t, "101/ns/net", "");
	snprintf(path, sizeof path, "%s/101/ns/net", t);
	snprintf(path2, sizeof path2, "%s/102/ns/net", t);
	assert_int_equal(link(path, path2), 0);		/* the same namespace */
	snprintf(path, sizeof path, "%s/self/ns/net", t);
	snprintf(path2, sizeof path2, "%s/201/ns/net", t);
	assert_int_equal(link(path, path2), 0);		/* the host's */
	snprintf(text, sizeof text, "30 25 0:26 / %s/cg/blkio rw,nosuid - cgroup cgroup "
	    "rw,blkio\n31 25 0:27 / %s/cg/unified rw - cgroup2 cgroup2 rw\n", t, t);
	write_file(t, "self/mountinfo", text);
	write_file(t, "101/net/dev", "Inter-|   Receive\n face |bytes\n"
	    "    lo: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n"
	    "  eth0: 5000 50 1 2 0 0 0 0 7000 70 3 4 0 0 0 0\n");
	write_file(t, "101/cgroup", "7:blkio:/v6/a\n4:memory:/v6/a\n0::/\n");
	write_file(t, "102/cgroup", "7:blkio:/v6/a\n4:memory:/v6/a\n0::/\n");
	write_file(t, "201/cgroup", "0::/v6/b\n");
	write_file(t, "cg/blkio/v6/a/blkio.throttle.io_service_bytes_recursive",
	    "259:99 Read 4096\n259:99 Write 8192\n259:99 Sync 0\n259:99 Total 12288\nTotal 12288\n");
	write_file(t, "cg/blkio/v6/a/blkio.throttle.io_serviced_recursive",
	    "259:99 Read 1\n259:99 Write 2\nTotal 3\n");
	write_file(t, "cg/unified/v6/b/io.stat",
	    "259:99 rbytes=100 wbytes=200 rios=3 wios=4 dbytes=0 dios=0\n");
	snprintf(text, sizeof text, "100 90 0:50 / / rw,relatime - overlay overlay "
	    "rw,lowerdir=/l1:/l2,upperdir=%s/upper,workdir=/w\n", t);
	write_file(t, "101/mountinfo", text);
	char big[20000];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	write_file(t, "upper/etc/data", big);
	struct host_ctr c[3] = {
		{ "ns", "a", "app", "img", NULL, NULL, NULL, false, 0, 0, 101 },
		{ "ns", "a", "side", "img2", NULL, NULL, NULL, false, 0, 0, 102 },
		{ "ns", "b", "app", "img", NULL, NULL, NULL, false, 0, 0, 201 },
	};
	om_writer_init(&w, &b, false);
	host_write_ctr_io(&w, c, 3, t);
	om_finish(&w);
#define N "{namespace=\"ns\",pod=\"a\",container=\"POD\",interface=\"eth0\"} "
	assert_has(b.data, "container_network_receive_bytes_total" N "5000\n");
	assert_has(b.data, "container_network_receive_packets_total" N "50\n");
	assert_has(b.data, "container_network_receive_errors_total" N "1\n");
	assert_has(b.data, "container_network_receive_packets_dropped_total" N "2\n");
	assert_has(b.data, "container_network_transmit_bytes_total" N "7000\n");
	assert_has(b.data, "container_network_transmit_packets_total" N "70\n");
	assert_has(b.data, "container_network_transmit_errors_total" N "3\n");
	assert_has(b.data, "container_network_transmit_packets_dropped_total" N "4\n");
	assert_lacks(b.data, "interface=\"lo\"");
	assert_lacks(b.data, "pod=\"b\",container=\"POD\"");
	/* one series per interface of the namespace, not one per container */
	const char *first = strstr(b.data, "container_network_receive_bytes_total{");
	assert_non_null(first);
	assert_null(strstr(first + 1, "container_network_receive_bytes_total{"));
#undef N
#define F(p, c, i) "{namespace=\"ns\",pod=\"" p "\",container=\"" c "\",image=\"" i \
	"\",device=\"259:99\"} "
	assert_has(b.data, "container_fs_reads_bytes_total" F("a", "app", "img") "4096\n");
	assert_has(b.data, "container_fs_writes_bytes_total" F("a", "app", "img") "8192\n");
	assert_has(b.data, "container_fs_reads_total" F("a", "app", "img") "1\n");
	assert_has(b.data, "container_fs_writes_total" F("a", "app", "img") "2\n");
	assert_has(b.data, "container_fs_reads_bytes_total" F("a", "side", "img2") "4096\n");
	assert_has(b.data, "container_fs_reads_bytes_total" F("b", "app", "img") "100\n");
	assert_has(b.data, "container_fs_writes_bytes_total" F("b", "app", "img") "200\n");
	assert_has(b.data, "container_fs_reads_total" F("b", "app", "img") "3\n");
	assert_has(b.data, "container_fs_writes_total" F("b", "app", "img") "4\n");
#undef F
	/* the writable layer: at least the 20 kB file, on the device it is on */
	const char *u = strstr(b.data, "container_fs_usage_bytes{namespace=\"ns\",pod=\"a\","
	    "container=\"app\",image=\"img\",device=\"");
	assert_non_null(u);
	u = strstr(u, "} ");
	assert_non_null(u);
	assert_true(strtod(u + 2, NULL) >= 20000);
	assert_lacks(b.data, "container_fs_usage_bytes{namespace=\"ns\",pod=\"b\"");
	buf_free(&b);
	snprintf(cmd, sizeof cmd, "rm -rf %s", t);
	assert_int_equal(system(cmd), 0);
}

/* Many verb/resource pairs move the latency array: every histogram on the
 * page still reads its own buckets (a stale pointer was a use-after-free
 * that AddressSanitizer caught in the alerting e2e run). */
static void
test_api_latencies_survive_their_array_growing(void **state)
{
	struct buf b = BUF_INIT;
	struct om_writer w;
	char res[32];
	(void)state;
	for (int i = 0; i < 40; i++) {
		snprintf(res, sizeof res, "grow%d", i);
		obs_api_request("GET", res, 200, 0.002);
	}
	obs_api_request("GET", "grow0", 200, 0.002);
	om_writer_init(&w, &b, false);
	obs_self_write(&w, 0, 0);
	assert_int_equal(om_finish(&w), 0);
	assert_has(b.data, "apiserver_request_duration_seconds_count{verb=\"GET\","
	    "resource=\"grow0\"} 2\n");
	assert_has(b.data, "apiserver_request_duration_seconds_count{verb=\"GET\","
	    "resource=\"grow39\"} 1\n");
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_labels_are_escaped),
		cmocka_unit_test(test_api_latencies_survive_their_array_growing),
		cmocka_unit_test(test_histogram_is_cumulative_with_inf_sum_count),
		cmocka_unit_test(test_openmetrics_counter_family_and_eof),
		cmocka_unit_test(test_large_page_streams_in_pieces),
		cmocka_unit_test(test_ksm_pod_mapping),
		cmocka_unit_test(test_cadvisor_network_and_fs),
		cmocka_unit_test(test_ksm_deployment_and_rollout),
		cmocka_unit_test(test_ksm_other_kinds),
		cmocka_unit_test(test_sd_lists_v6_and_annotated_pods),
		cmocka_unit_test(test_node_exporter_names_from_proc),
		cmocka_unit_test(test_cadvisor_names_from_cgroups),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
