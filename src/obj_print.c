/* obj_print.c — kubectl's columns for every kind V6 serves (see
 * obj_print.h): the cells of Kubernetes' printers (pkg/printers/
 * internalversion) and of the upstream CRDs' additionalPrinterColumns (Argo
 * Rollouts, Gateway API), as pure functions of an object and a clock. Read
 * by the API's Table responses and by the v6 CLI's tables. */
#include "obj_print.h"
#include "obj.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
print_age(const char *ts, int64_t now_ms, char *out)
{
	time_t t;
	if (ts == NULL || time_parse_rfc3339(ts, &t) < 0) {
		snprintf(out, 32, "<unknown>");
		return;
	}
	duration_format_age(now_ms - (int64_t)t * 1000, out);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The keys of map sorted (as Go's printers sort them); caller frees the
 * array, not the keys. */
static const char **
sorted_keys(const json_t *map, size_t *n)
{
	size_t i = 0;
	const char **keys = xcalloc(json_object_size(map) + 1, sizeof *keys);
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)map, k, v)
		keys[i++] = k;
	qsort(keys, i, sizeof *keys, cmp_str);
	*n = i;
	return keys;
}

void
print_labels(struct buf *b, const json_t *map)
{
	size_t n, i;
	const char **keys = sorted_keys(map, &n);
	json_t *v;
	for (i = 0; i < n; i++) {
		v = json_object_get(map, keys[i]);
		buf_printf(b, "%s%s=%s", i ? "," : "", keys[i],
		    json_is_string(v) ? json_string_value(v) : "");
	}
	if (n == 0)
		buf_puts(b, "<none>");
	free(keys);
}

/* ---- cells ------------------------------------------------------------ */

static long long
num(const json_t *obj, const char *path)
{
	return json_integer_value(obj_get_path(obj, path));
}

static void
put_or_none(struct buf *b, const char *s)
{
	buf_puts(b, s && *s ? s : "<none>");
}

static void
cell_age(const struct print_ctx *c)
{
	char age[32];
	const char *ts = json_string_value(obj_get_path(c->obj, "metadata.creationTimestamp"));
	print_age(ts, c->now, age);
	buf_puts(c->out, age);
}

static void
cell_phase(const struct print_ctx *c)
{
	const char *phase = obj_str_at(c->obj, "status.phase");
	if (!*phase)
		phase = obj_get_path(c->obj, "metadata.deletionTimestamp") ? "Terminating" : "Active";
	buf_puts(c->out, phase);
}

static void
cell_pod_ready(const struct print_ctx *c)
{
	json_t *cs = obj_get_path(c->obj, "status.containerStatuses");
	size_t i, ready = 0;
	json_t *s;
	json_array_foreach(cs, i, s)
		ready += json_is_true(json_object_get(s, "ready"));
	buf_printf(c->out, "%zu/%zu", ready, json_array_size(obj_get_path(c->obj,
	    "spec.containers")));
}

/* printPod's STATUS: the phase, or status.reason, or the reason of the
 * last container (in order) that is waiting or terminated ("Completed"
 * while another still runs reads Running), "Init:..." while init
 * containers run, Terminating once deleted. */
static void
cell_pod_status(const struct print_ctx *c)
{
	const char *reason = obj_str_at(c->obj, "status.phase");
	char init[128] = "";
	bool running = false;
	size_t i, ninit = json_array_size(obj_get_path(c->obj, "spec.initContainers"));
	json_t *s;
	if (*obj_str_at(c->obj, "status.reason"))
		reason = obj_str_at(c->obj, "status.reason");
	json_array_foreach(obj_get_path(c->obj, "status.initContainerStatuses"), i, s) {
		const char *t = obj_str_at(s, "state.terminated.reason");
		if (obj_get_path(s, "state.terminated") &&
		    json_integer_value(obj_get_path(s, "state.terminated.exitCode")) == 0)
			continue;
		if (obj_get_path(s, "state.terminated"))
			snprintf(init, sizeof init, "Init:%s", *t ? t : "Error");
		else if (*obj_str_at(s, "state.waiting.reason") &&
		    strcmp(obj_str_at(s, "state.waiting.reason"), "PodInitializing") != 0)
			snprintf(init, sizeof init, "Init:%s", obj_str_at(s, "state.waiting.reason"));
		else
			snprintf(init, sizeof init, "Init:%zu/%zu", i, ninit);
		break;
	}
	if (*init) {
		buf_puts(c->out, init);
		return;
	}
	json_array_foreach(obj_get_path(c->obj, "status.containerStatuses"), i, s) {
		const char *w = obj_str_at(s, "state.waiting.reason");
		const char *t = obj_str_at(s, "state.terminated.reason");
		if (*w)
			reason = w;
		else if (obj_get_path(s, "state.terminated"))
			reason = *t ? t : "Error";
		else if (obj_get_path(s, "state.running") && json_is_true(json_object_get(s, "ready")))
			running = true;
	}
	if (strcmp(reason, "Completed") == 0 && running)
		reason = "Running";
	if (obj_get_path(c->obj, "metadata.deletionTimestamp"))
		reason = "Terminating";
	buf_puts(c->out, *reason ? reason : "Pending");
}

/* "3", or "3 (5m ago)" when a container has terminated before. */
static void
cell_pod_restarts(const struct print_ctx *c)
{
	long long n = 0;
	int64_t last = 0;
	size_t i;
	json_t *s;
	json_array_foreach(obj_get_path(c->obj, "status.containerStatuses"), i, s) {
		int64_t t = obj_time_ms(obj_get_path(s, "lastState.terminated.finishedAt"));
		n += json_integer_value(json_object_get(s, "restartCount"));
		if (t > last)
			last = t;
	}
	buf_printf(c->out, "%lld", n);
	if (n && last) {
		char age[32];
		duration_format_age(c->now - last, age);
		buf_printf(c->out, " (%s ago)", age);
	}
}

static void
cell_none(const struct print_ctx *c)
{
	buf_puts(c->out, "<none>");
}

static void
cell_pod_ip(const struct print_ctx *c)
{
	put_or_none(c->out, obj_str_at(c->obj, "status.podIP"));
}

static void
cell_pod_node(const struct print_ctx *c)
{
	put_or_none(c->out, obj_str_at(c->obj, "spec.nodeName"));
}

static long long
spec_replicas(const json_t *obj)
{
	json_t *r = obj_get_path(obj, "spec.replicas");
	return r ? json_integer_value(r) : 1;
}

static void
cell_deploy_ready(const struct print_ctx *c)
{
	buf_printf(c->out, "%lld/%lld", num(c->obj, "status.readyReplicas"),
	    spec_replicas(c->obj));
}

static void
cell_updated(const struct print_ctx *c)
{
	buf_printf(c->out, "%lld", num(c->obj, "status.updatedReplicas"));
}

static void
cell_available(const struct print_ctx *c)
{
	buf_printf(c->out, "%lld", num(c->obj, "status.availableReplicas"));
}

static void
cell_desired(const struct print_ctx *c)
{
	buf_printf(c->out, "%lld", spec_replicas(c->obj));
}

static void
cell_current(const struct print_ctx *c)
{
	buf_printf(c->out, "%lld", num(c->obj, "status.replicas"));
}

static void
cell_ready_count(const struct print_ctx *c)
{
	buf_printf(c->out, "%lld", num(c->obj, "status.readyReplicas"));
}

static void
join_containers(const struct print_ctx *c, const char *field)
{
	json_t *cs = obj_get_path(c->obj, "spec.template.spec.containers");
	size_t i;
	json_t *ct;
	json_array_foreach(cs, i, ct)
		buf_printf(c->out, "%s%s", i ? "," : "", obj_str_at(ct, field));
	if (json_array_size(cs) == 0)
		buf_puts(c->out, "<none>");
}

static void
cell_containers(const struct print_ctx *c)
{
	join_containers(c, "name");
}

static void
cell_images(const struct print_ctx *c)
{
	join_containers(c, "image");
}

/* metav1.FormatLabelSelector: "app=web", "<none>" for none. */
static void
put_selector(struct buf *b, const json_t *sel)
{
	struct selector *s = NULL;
	char *err = NULL, *txt = NULL;
	if (sel && selector_from_json(sel, &s, &err) == 0)
		txt = selector_format(s);
	put_or_none(b, txt);
	free(txt);
	free(err);
	selector_free(s);
}

static void
cell_selector(const struct print_ctx *c)
{
	put_selector(c->out, obj_get_path(c->obj, "spec.selector"));
}

static void
cell_svc_selector(const struct print_ctx *c)
{
	print_labels(c->out, obj_get_path(c->obj, "spec.selector"));
}

static void
cell_svc_type(const struct print_ctx *c)
{
	const char *t = obj_str_at(c->obj, "spec.type");
	buf_puts(c->out, *t ? t : "ClusterIP");
}

static void
cell_cluster_ip(const struct print_ctx *c)
{
	put_or_none(c->out, obj_str_at(c->obj, "spec.clusterIP"));
}

/* getServiceExternalIP: the external IPs, a LoadBalancer's ingress (or
 * "<pending>"), an ExternalName's name. */
static void
cell_external_ip(const struct print_ctx *c)
{
	const char *type = obj_str_at(c->obj, "spec.type");
	const json_t *ips = obj_get_path(c->obj, "spec.externalIPs"), *ip;
	size_t i, n = 0;
	if (strcmp(type, "ExternalName") == 0) {
		buf_puts(c->out, obj_str_at(c->obj, "spec.externalName"));
		return;
	}
	if (strcmp(type, "LoadBalancer") == 0)
		json_array_foreach(obj_get_path(c->obj, "status.loadBalancer.ingress"), i, ip) {
			const char *v = obj_str_at(ip, "ip");
			buf_printf(c->out, "%s%s", n++ ? "," : "", *v ? v : obj_str_at(ip, "hostname"));
		}
	json_array_foreach(ips, i, ip)
		buf_printf(c->out, "%s%s", n++ ? "," : "", json_string_value(ip));
	if (n == 0)
		buf_puts(c->out, strcmp(type, "LoadBalancer") == 0 ? "<pending>" : "<none>");
}

static void
cell_ports(const struct print_ctx *c)
{
	json_t *ports = obj_get_path(c->obj, "spec.ports");
	size_t i;
	json_t *p;
	json_array_foreach(ports, i, p) {
		const char *proto = obj_str_at(p, "protocol");
		buf_printf(c->out, "%s%lld", i ? "," : "", num(p, "port"));
		if (json_object_get(p, "nodePort"))
			buf_printf(c->out, ":%lld", num(p, "nodePort"));
		buf_printf(c->out, "/%s", *proto ? proto : "TCP");
	}
	if (json_array_size(ports) == 0)
		buf_puts(c->out, "<none>");
}

static void
cell_endpoints(const struct print_ctx *c)
{
	size_t shown = 0, total = 0, i, j, k;
	json_t *sub, *addr, *port;
	json_array_foreach(json_object_get(c->obj, "subsets"), i, sub) {
		json_array_foreach(json_object_get(sub, "addresses"), j, addr) {
			json_t *ports = json_object_get(sub, "ports");
			if (json_array_size(ports) == 0 && total++ < 3)
				buf_printf(c->out, "%s%s", shown++ ? "," : "", obj_str_at(addr, "ip"));
			json_array_foreach(ports, k, port)
				if (total++ < 3)
					buf_printf(c->out, "%s%s:%lld", shown++ ? "," : "",
					    obj_str_at(addr, "ip"), num(port, "port"));
		}
	}
	if (total == 0)
		buf_puts(c->out, "<none>");
	else if (total > 3)
		buf_printf(c->out, " + %zu more...", total - 3);
}

static void
cell_data_count(const struct print_ctx *c)
{
	buf_printf(c->out, "%zu", json_object_size(json_object_get(c->obj, "data")) +
	    json_object_size(json_object_get(c->obj, "binaryData")));
}

static void
cell_secret_type(const struct print_ctx *c)
{
	const char *t = obj_str_at(c->obj, "type");
	buf_puts(c->out, *t ? t : "Opaque");
}

static const char *
event_first(const json_t *ev)
{
	const char *ts = json_string_value(json_object_get(ev, "firstTimestamp"));
	if (!ts)
		ts = json_string_value(json_object_get(ev, "eventTime"));
	return ts ? ts : json_string_value(obj_get_path(ev, "metadata.creationTimestamp"));
}

static const char *
event_last(const json_t *ev)
{
	const char *ts = json_string_value(json_object_get(ev, "lastTimestamp"));
	return ts ? ts : event_first(ev);
}

/* "5s", or "5s (x3 over 2m)" for an event seen more than once. */
static void
cell_event_seen(const struct print_ctx *c)
{
	char last[32], first[32];
	long long n = num(c->obj, "count");
	const json_t *series = json_object_get(c->obj, "series");
	print_age(event_first(c->obj), c->now, first);
	if (series) {
		print_age(obj_str_at(series, "lastObservedTime"), c->now, last);
		buf_printf(c->out, "%s (x%lld over %s)", last, num(series, "count"), first);
	} else if (n > 1) {
		print_age(event_last(c->obj), c->now, last);
		buf_printf(c->out, "%s (x%lld over %s)", last, n, first);
	} else {
		buf_puts(c->out, first);
	}
}

static void
cell_event_first(const struct print_ctx *c)
{
	char age[32];
	print_age(event_first(c->obj), c->now, age);
	buf_puts(c->out, age);
}

static void
cell_event_count(const struct print_ctx *c)
{
	buf_printf(c->out, "%lld", num(c->obj, "count"));
}

static void
cell_event_subobject(const struct print_ctx *c)
{
	buf_puts(c->out, obj_str_at(c->obj, "involvedObject.fieldPath"));
}

/* formatEventSource: "component, host", or the reporting controller. */
static void
cell_event_source(const struct print_ctx *c)
{
	const char *comp = obj_str_at(c->obj, "source.component");
	const char *host = obj_str_at(c->obj, "source.host");
	if (!*comp)
		comp = obj_str_at(c->obj, "reportingComponent");
	if (!*host)
		host = obj_str_at(c->obj, "reportingInstance");
	buf_puts(c->out, comp);
	if (*host)
		buf_printf(c->out, ", %s", host);
}

static void
cell_name(const struct print_ctx *c)
{
	buf_puts(c->out, obj_name(c->obj));
}

static void
cell_event_type(const struct print_ctx *c)
{
	buf_puts(c->out, obj_str_at(c->obj, "type"));
}

static void
cell_event_reason(const struct print_ctx *c)
{
	buf_puts(c->out, obj_str_at(c->obj, "reason"));
}

static void
cell_event_object(const struct print_ctx *c)
{
	const char *kind = obj_str_at(c->obj, "involvedObject.kind");
	for (const char *p = kind; *p; p++)
		buf_putc(c->out, (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p));
	buf_printf(c->out, "/%s", obj_str_at(c->obj, "involvedObject.name"));
}

static void
cell_event_message(const struct print_ctx *c)
{
	buf_puts(c->out, obj_str_at(c->obj, "message"));
}

static void
cell_hpa_ref(const struct print_ctx *c)
{
	buf_printf(c->out, "%s/%s", obj_str_at(c->obj, "spec.scaleTargetRef.kind"),
	    obj_str_at(c->obj, "spec.scaleTargetRef.name"));
}

static void
cell_hpa_targets(const struct print_ctx *c)
{
	print_hpa_targets(c->obj, c->out);
}

static void
cell_hpa_min(const struct print_ctx *c)
{
	json_t *m = obj_get_path(c->obj, "spec.minReplicas");
	buf_printf(c->out, "%lld", m ? json_integer_value(m) : 1);
}

static void
cell_hpa_max(const struct print_ctx *c)
{
	buf_printf(c->out, "%lld", num(c->obj, "spec.maxReplicas"));
}

static void
cell_hpa_replicas(const struct print_ctx *c)
{
	buf_printf(c->out, "%lld", num(c->obj, "status.currentReplicas"));
}

/* The VPA CRD's printer columns: the first container's target, the
 * RecommendationProvided condition. */
static void
cell_vpa_mode(const struct print_ctx *c)
{
	buf_puts(c->out, obj_str_at(c->obj, "spec.updatePolicy.updateMode"));
}

static void
vpa_target(const struct print_ctx *c, const char *res)
{
	const json_t *r = json_array_get(obj_get_path(c->obj,
	    "status.recommendation.containerRecommendations"), 0);
	buf_puts(c->out, obj_str(json_object_get(r, "target"), res));
}

static void
cell_vpa_cpu(const struct print_ctx *c)
{
	vpa_target(c, "cpu");
}

static void
cell_vpa_mem(const struct print_ctx *c)
{
	vpa_target(c, "memory");
}

static void
cell_vpa_provided(const struct print_ctx *c)
{
	const json_t *cond = obj_condition(obj_get_path(c->obj, "status"),
	    "RecommendationProvided");
	buf_puts(c->out, obj_str(cond, "status"));
}

static void
cell_sts_ready(const struct print_ctx *c)
{
	buf_printf(c->out, "%lld/%lld", num(c->obj, "status.readyReplicas"),
	    spec_replicas(c->obj));
}

static void
cell_ds_desired(const struct print_ctx *c)
{
	buf_printf(c->out, "%lld", num(c->obj, "status.desiredNumberScheduled"));
}

static void
cell_ds_current(const struct print_ctx *c)
{
	buf_printf(c->out, "%lld", num(c->obj, "status.currentNumberScheduled"));
}

static void
cell_ds_ready(const struct print_ctx *c)
{
	buf_printf(c->out, "%lld", num(c->obj, "status.numberReady"));
}

static void
cell_ds_updated(const struct print_ctx *c)
{
	buf_printf(c->out, "%lld", num(c->obj, "status.updatedNumberScheduled"));
}

static void
cell_ds_available(const struct print_ctx *c)
{
	buf_printf(c->out, "%lld", num(c->obj, "status.numberAvailable"));
}

/* Argo CD's Application columns (its CRD's printer columns). */
static void
cell_app_sync(const struct print_ctx *c)
{
	buf_puts(c->out, obj_str_at(c->obj, "status.sync.status"));
}

static void
cell_app_health(const struct print_ctx *c)
{
	buf_puts(c->out, obj_str_at(c->obj, "status.health.status"));
}

static void
cell_app_revision(const struct print_ctx *c)
{
	buf_puts(c->out, obj_str_at(c->obj, "status.sync.revision"));
}

static void
cell_app_project(const struct print_ctx *c)
{
	buf_puts(c->out, obj_str_at(c->obj, "spec.project"));
}

static void
cell_run_status(const struct print_ctx *c)
{
	const char *p = obj_str_at(c->obj, "status.phase");
	buf_puts(c->out, *p ? p : "Pending");
}

/* Job and CronJob columns as kubectl's printers (printJob, printCronJob). */
static void
cell_job_status(const struct print_ctx *c)
{
	static const char *const order[] = { "Complete", "Failed", "", "Suspended",
		"FailureTarget", "SuccessCriteriaMet" };
	const json_t *st = json_object_get(c->obj, "status");
	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		const json_t *cond = *order[i] ? obj_condition(st, order[i]) : NULL;
		if (!*order[i] && obj_get_path(c->obj, "metadata.deletionTimestamp")) {
			buf_puts(c->out, "Terminating");
			return;
		}
		if (cond && strcmp(obj_str(cond, "status"), "True") == 0) {
			buf_puts(c->out, order[i]);
			return;
		}
	}
	buf_puts(c->out, "Running");
}

static void
cell_job_completions(const struct print_ctx *c)
{
	long long succ = num(c->obj, "status.succeeded");
	if (json_is_integer(obj_get_path(c->obj, "spec.completions")))
		buf_printf(c->out, "%lld/%lld", succ, num(c->obj, "spec.completions"));
	else if (num(c->obj, "spec.parallelism") > 1)
		buf_printf(c->out, "%lld/1 of %lld", succ, num(c->obj, "spec.parallelism"));
	else
		buf_printf(c->out, "%lld/1", succ);
}

static void
cell_job_duration(const struct print_ctx *c)
{
	int64_t start = obj_time_ms(obj_get_path(c->obj, "status.startTime"));
	int64_t end = obj_time_ms(obj_get_path(c->obj, "status.completionTime"));
	char d[32];
	if (!start)
		return;
	duration_format_age((end ? end : c->now) - start, d);
	buf_puts(c->out, d);
}

static void
cell_cj_schedule(const struct print_ctx *c)
{
	buf_puts(c->out, obj_str_at(c->obj, "spec.schedule"));
}

static void
cell_cj_timezone(const struct print_ctx *c)
{
	put_or_none(c->out, obj_str_at(c->obj, "spec.timeZone"));
}

static void
cell_cj_suspend(const struct print_ctx *c)
{
	buf_puts(c->out, json_is_true(obj_get_path(c->obj, "spec.suspend")) ? "True" : "False");
}

static void
cell_cj_active(const struct print_ctx *c)
{
	buf_printf(c->out, "%zu", json_array_size(obj_get_path(c->obj, "status.active")));
}

static void
cell_cj_last(const struct print_ctx *c)
{
	const char *ts = json_string_value(obj_get_path(c->obj, "status.lastScheduleTime"));
	char age[32];
	if (!ts) {
		buf_puts(c->out, "<none>");
		return;
	}
	print_age(ts, c->now, age);
	buf_puts(c->out, age);
}

/* ---- nodes, volumes, runtime classes, revisions ------------------------ */

static const json_t *
node_address(const json_t *node, const char *type)
{
	const json_t *a;
	size_t i;
	json_array_foreach(obj_get_path(node, "status.addresses"), i, a)
		if (strcmp(obj_str_at(a, "type"), type) == 0)
			return a;
	return NULL;
}

static void
cell_node_status(const struct print_ctx *c)
{
	const json_t *ready = obj_condition(json_object_get(c->obj, "status"), "Ready");
	const char *st = obj_str_at(ready, "status");
	buf_puts(c->out, strcmp(st, "True") == 0 ? "Ready" : strcmp(st, "False") == 0 ?
	    "NotReady" : "Unknown");
	if (json_is_true(obj_get_path(c->obj, "spec.unschedulable")))
		buf_puts(c->out, ",SchedulingDisabled");
}

/* node-role.kubernetes.io/ROLE labels and kubernetes.io/role. */
static void
cell_node_roles(const struct print_ctx *c)
{
	const char *k;
	json_t *v;
	size_t n = 0;
	json_object_foreach(obj_labels(c->obj), k, v) {
		const char *role = str_has_prefix(k, "node-role.kubernetes.io/") ?
		    k + strlen("node-role.kubernetes.io/") : strcmp(k, "kubernetes.io/role") == 0 ?
		    json_string_value(v) : NULL;
		if (role && *role)
			buf_printf(c->out, "%s%s", n++ ? "," : "", role);
	}
	if (n == 0)
		buf_puts(c->out, "<none>");
}

static void
cell_node_version(const struct print_ctx *c)
{
	buf_puts(c->out, obj_str_at(c->obj, "status.nodeInfo.kubeletVersion"));
}

static void
cell_node_internal_ip(const struct print_ctx *c)
{
	put_or_none(c->out, obj_str_at(node_address(c->obj, "InternalIP"), "address"));
}

static void
cell_node_external_ip(const struct print_ctx *c)
{
	put_or_none(c->out, obj_str_at(node_address(c->obj, "ExternalIP"), "address"));
}

static void
cell_node_os(const struct print_ctx *c)
{
	const char *s = obj_str_at(c->obj, "status.nodeInfo.osImage");
	buf_puts(c->out, *s ? s : "<unknown>");
}

static void
cell_node_kernel(const struct print_ctx *c)
{
	const char *s = obj_str_at(c->obj, "status.nodeInfo.kernelVersion");
	buf_puts(c->out, *s ? s : "<unknown>");
}

static void
cell_node_runtime(const struct print_ctx *c)
{
	const char *s = obj_str_at(c->obj, "status.nodeInfo.containerRuntimeVersion");
	buf_puts(c->out, *s ? s : "<unknown>");
}

static void
cell_pvc_volume(const struct print_ctx *c)
{
	buf_puts(c->out, obj_str_at(c->obj, "spec.volumeName"));
}

static void
cell_pvc_capacity(const struct print_ctx *c)
{
	buf_puts(c->out, obj_str_at(c->obj, "status.capacity.storage"));
}

/* RWO, ROX, RWX, RWOP as kubectl abbreviates access modes. */
static void
cell_pvc_modes(const struct print_ctx *c)
{
	static const char *const abbr[][2] = { { "ReadWriteOnce", "RWO" },
		{ "ReadOnlyMany", "ROX" }, { "ReadWriteMany", "RWX" },
		{ "ReadWriteOncePod", "RWOP" } };
	const json_t *m;
	size_t i, n = 0;
	json_array_foreach(obj_get_path(c->obj, "status.accessModes"), i, m)
		for (size_t j = 0; j < ARRAY_SIZE(abbr); j++)
			if (json_string_value(m) && strcmp(json_string_value(m), abbr[j][0]) == 0)
				buf_printf(c->out, "%s%s", n++ ? "," : "", abbr[j][1]);
}

static void
cell_pvc_class(const struct print_ctx *c)
{
	buf_puts(c->out, obj_str_at(c->obj, "spec.storageClassName"));
}

static void
cell_unset(const struct print_ctx *c)
{
	buf_puts(c->out, "<unset>");
}

static void
cell_pvc_mode(const struct print_ctx *c)
{
	const char *m = obj_str_at(c->obj, "spec.volumeMode");
	buf_puts(c->out, *m ? m : "Filesystem");
}

static void
cell_rc_handler(const struct print_ctx *c)
{
	buf_puts(c->out, obj_str_at(c->obj, "handler"));
}

/* "statefulset.apps/web": the controlling owner as kind.group/name. */
static void
cell_cr_controller(const struct print_ctx *c)
{
	const json_t *o;
	size_t i;
	json_array_foreach(obj_get_path(c->obj, "metadata.ownerReferences"), i, o) {
		if (!json_is_true(json_object_get(o, "controller")))
			continue;
		const char *av = obj_str_at(o, "apiVersion"), *slash = strchr(av, '/');
		const char *kind = obj_str_at(o, "kind");
		for (const char *p = kind; *p; p++)
			buf_putc(c->out, (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p));
		if (slash)
			buf_printf(c->out, ".%.*s", (int)(slash - av), av);
		buf_printf(c->out, "/%s", obj_str_at(o, "name"));
		return;
	}
	buf_puts(c->out, "<none>");
}

static void
cell_cr_revision(const struct print_ctx *c)
{
	buf_printf(c->out, "%lld", num(c->obj, "revision"));
}

static void
cell_ds_node_selector(const struct print_ctx *c)
{
	print_labels(c->out, obj_get_path(c->obj, "spec.template.spec.nodeSelector"));
}

static void
cell_cj_containers(const struct print_ctx *c)
{
	json_t *cs = obj_get_path(c->obj, "spec.jobTemplate.spec.template.spec.containers"), *ct;
	size_t i;
	json_array_foreach(cs, i, ct)
		buf_printf(c->out, "%s%s", i ? "," : "", obj_str_at(ct, "name"));
}

static void
cell_cj_images(const struct print_ctx *c)
{
	json_t *cs = obj_get_path(c->obj, "spec.jobTemplate.spec.template.spec.containers"), *ct;
	size_t i;
	json_array_foreach(cs, i, ct)
		buf_printf(c->out, "%s%s", i ? "," : "", obj_str_at(ct, "image"));
}

static void
cell_cj_selector(const struct print_ctx *c)
{
	put_selector(c->out, obj_get_path(c->obj, "spec.jobTemplate.spec.selector"));
}

/* printResourceQuota: "cpu: 500m/1, pods: 2/10" sorted by resource, the
 * limits.* resources in the Limit column, the others in Request. */
static void
put_quota(const struct print_ctx *c, bool limits)
{
	size_t n, i, shown = 0;
	const char **keys = sorted_keys(obj_get_path(c->obj, "spec.hard"), &n);
	for (i = 0; i < n; i++) {
		if (str_has_prefix(keys[i], "limits.") != limits)
			continue;
		const char *used = json_string_value(json_object_get(obj_get_path(c->obj,
		    "status.used"), keys[i]));
		const char *h = json_string_value(json_object_get(obj_get_path(c->obj,
		    "status.hard"), keys[i]));
		buf_printf(c->out, "%s%s: %s/%s", shown++ ? ", " : "", keys[i], used ? used : "0",
		    h ? h : "0");
	}
	free(keys);
}

static void
cell_quota_request(const struct print_ctx *c)
{
	put_quota(c, false);
}

static void
cell_quota_limit(const struct print_ctx *c)
{
	put_quota(c, true);
}

/* The apiserver's default convertor: the creation time as RFC 3339. */
static void
cell_created_at(const struct print_ctx *c)
{
	buf_puts(c->out, obj_str_at(c->obj, "metadata.creationTimestamp"));
}

/* ---- the CRDs' additionalPrinterColumns (JSONPath cells) ---------------- */

static void
put_int_at(const struct print_ctx *c, const char *path)
{
	const json_t *v = obj_get_path(c->obj, path);
	if (json_is_integer(v))
		buf_printf(c->out, "%lld", (long long)json_integer_value(v));
}

static void
cell_spec_replicas_opt(const struct print_ctx *c)
{
	put_int_at(c, "spec.replicas");
}

static void
cell_status_replicas_opt(const struct print_ctx *c)
{
	put_int_at(c, "status.replicas");
}

static void
cell_updated_opt(const struct print_ctx *c)
{
	put_int_at(c, "status.updatedReplicas");
}

static void
cell_available_opt(const struct print_ctx *c)
{
	put_int_at(c, "status.availableReplicas");
}

static void
cell_status_phase_opt(const struct print_ctx *c)
{
	buf_puts(c->out, obj_str_at(c->obj, "status.phase"));
}

/* .status.conditions[?(@.type=="T")].status */
static void
put_condition(const struct print_ctx *c, const char *type)
{
	const json_t *cond = obj_condition(json_object_get(c->obj, "status"), type);
	buf_puts(c->out, obj_str_at(cond, "status"));
}

static void
cell_gc_controller(const struct print_ctx *c)
{
	buf_puts(c->out, obj_str_at(c->obj, "spec.controllerName"));
}

static void
cell_gc_accepted(const struct print_ctx *c)
{
	put_condition(c, "Accepted");
}

static void
cell_gc_description(const struct print_ctx *c)
{
	buf_puts(c->out, obj_str_at(c->obj, "spec.description"));
}

static void
cell_gw_programmed_opt(const struct print_ctx *c)
{
	put_condition(c, "Programmed");
}

/* .status.addresses[*].value: the values separated by spaces. */
static void
cell_gw_addresses(const struct print_ctx *c)
{
	const json_t *a;
	size_t i;
	json_array_foreach(obj_get_path(c->obj, "status.addresses"), i, a)
		buf_printf(c->out, "%s%s", i ? " " : "", obj_str_at(a, "value"));
}

/* .spec.hostnames as JSONPath prints a list: ["a.example.com","b"]. */
static void
cell_route_hostnames_json(const struct print_ctx *c)
{
	const json_t *hs = obj_get_path(c->obj, "spec.hostnames");
	if (json_array_size(hs) == 0)
		return;
	char *s = json_dumps(hs, JSON_COMPACT | JSON_ENCODE_ANY);
	buf_puts(c->out, s);
	free(s);
}

/* Gateway API columns: HTTPRoute hostnames ("*": any) and parents
 * ("gateway/edge:http", "service/web"; NS/ first when another namespace);
 * Gateway class, address and Programmed, as the CRDs' printer columns. */
static void
cell_route_hostnames(const struct print_ctx *c)
{
	const json_t *hs = obj_get_path(c->obj, "spec.hostnames"), *h;
	size_t i;
	json_array_foreach(hs, i, h)
		buf_printf(c->out, "%s%s", i ? "," : "", json_string_value(h) ? json_string_value(h)
		    : "");
	if (json_array_size(hs) == 0)
		buf_puts(c->out, "*");
}

static void
cell_route_parents(const struct print_ctx *c)
{
	const json_t *refs = obj_get_path(c->obj, "spec.parentRefs"), *r;
	size_t i;
	json_array_foreach(refs, i, r) {
		const char *kind = obj_str_at(r, "kind"), *ns = obj_str_at(r, "namespace");
		const char *sec = obj_str_at(r, "sectionName");
		buf_printf(c->out, "%s%s/", i ? "," : "", *kind && strcmp(kind, "Gateway") != 0 ?
		    "service" : "gateway");
		if (*ns && strcmp(ns, obj_str_at(c->obj, "metadata.namespace")) != 0)
			buf_printf(c->out, "%s/", ns);
		buf_puts(c->out, obj_str_at(r, "name"));
		if (*sec)
			buf_printf(c->out, ":%s", sec);
	}
	if (json_array_size(refs) == 0)
		buf_puts(c->out, "<none>");
}

static void
cell_gw_class(const struct print_ctx *c)
{
	put_or_none(c->out, obj_str_at(c->obj, "spec.gatewayClassName"));
}

static void
cell_gw_address(const struct print_ctx *c)
{
	const json_t *a = json_array_get(obj_get_path(c->obj, "status.addresses"), 0);
	if (a == NULL)
		a = json_array_get(obj_get_path(c->obj, "spec.addresses"), 0);
	put_or_none(c->out, obj_str_at(a, "value"));
}

static void
cell_gw_programmed(const struct print_ctx *c)
{
	put_condition(c, "Programmed");
	if (c->out->len == 0)
		buf_puts(c->out, "Unknown");
}

/* ---- the column table ------------------------------------------------- */

#define D_NAME "Name must be unique within a namespace."
#define D_AGE "CreationTimestamp is a timestamp representing the server time when this " \
	"object was created."
#define D_CONTAINERS "Names of each container in the template."
#define D_IMAGES "Images referenced by each container in the template."

#define NAME_COL { "Name", "string", 0, NULL, PRINT_STR, PRINT_BOTH, D_NAME }
#define AGE_COL { "Age", "string", 0, cell_age, PRINT_STR, PRINT_BOTH, D_AGE }
#define CRD_AGE { "Age", "date", 0, cell_age, PRINT_STR, PRINT_BOTH, D_AGE }
#define S(n, f, d) { n, "string", 0, f, PRINT_STR, PRINT_BOTH, d }
#define I(n, f, d) { n, "integer", 0, f, PRINT_INT, PRINT_BOTH, d }
#define W(n, f, d) { n, "string", 1, f, PRINT_STR, PRINT_BOTH, d }
#define WIDE_TEMPLATE W("Containers", cell_containers, D_CONTAINERS), \
	W("Images", cell_images, D_IMAGES)
#define END_COLS { NULL, NULL, 0, NULL, PRINT_STR, PRINT_BOTH, NULL }

struct kind_columns {
	const char *kind;
	struct print_col cols[12];
};

/* Kubernetes 1.32's printers.go column definitions (names, types,
 * priorities) and the CRDs' additionalPrinterColumns, kind by kind. */
static const struct kind_columns kind_columns[] = {
	{ "Namespace", { NAME_COL, S("Status", cell_phase, "The status of the namespace"),
	    AGE_COL, END_COLS } },
	{ "Pod", { NAME_COL,
	    S("Ready", cell_pod_ready, "The aggregate readiness state of this pod for accepting "
	    "traffic."),
	    S("Status", cell_pod_status, "The aggregate status of the containers in this pod."),
	    S("Restarts", cell_pod_restarts, "The number of times the containers in this pod "
	    "have been restarted and when the last container in this pod has restarted."),
	    AGE_COL, W("IP", cell_pod_ip, "podIP address allocated to the pod."),
	    W("Node", cell_pod_node, "NodeName indicates in which node this pod is scheduled."),
	    W("Nominated Node", cell_none, "nominatedNodeName is set only when this pod "
	    "preempts other pods on the node."),
	    W("Readiness Gates", cell_none, "If specified, all readiness gates will be "
	    "evaluated for pod readiness."), END_COLS } },
	{ "Deployment", { NAME_COL, S("Ready", cell_deploy_ready, "Number of the pod with "
	    "ready state"),
	    { "Up-to-date", "string", 0, cell_updated, PRINT_INT, PRINT_BOTH,
	      "Total number of non-terminated pods targeted by this deployment that have the "
	      "desired template spec." },
	    { "Available", "string", 0, cell_available, PRINT_INT, PRINT_BOTH,
	      "Total number of available pods (ready for at least minReadySeconds) targeted by "
	      "this deployment." },
	    AGE_COL, WIDE_TEMPLATE, W("Selector", cell_selector, "Label selector for pods."),
	    END_COLS } },
	{ "ReplicaSet", { NAME_COL,
	    I("Desired", cell_desired, "Replicas is the number of desired replicas."),
	    I("Current", cell_current, "Replicas is the most recently observed number of "
	    "replicas."),
	    I("Ready", cell_ready_count, "The number of ready replicas for this replica set."),
	    AGE_COL, WIDE_TEMPLATE, W("Selector", cell_selector, "Label selector for pods."),
	    END_COLS } },
	{ "StatefulSet", { NAME_COL, S("Ready", cell_sts_ready, "Number of the pod with ready "
	    "state"), AGE_COL, WIDE_TEMPLATE, END_COLS } },
	{ "DaemonSet", { NAME_COL,
	    I("Desired", cell_ds_desired, "The total number of nodes that should be running the "
	    "daemon pod."),
	    I("Current", cell_ds_current, "The number of nodes that are running at least 1 "
	    "daemon pod and are supposed to run the daemon pod."),
	    I("Ready", cell_ds_ready, "The number of nodes that should be running the daemon "
	    "pod and have one or more of the daemon pod running and ready."),
	    I("Up-to-date", cell_ds_updated, "The total number of nodes that are running "
	    "updated daemon pod"),
	    I("Available", cell_ds_available, "The number of nodes that should be running the "
	    "daemon pod and have one or more of the daemon pod running and available."),
	    S("Node Selector", cell_ds_node_selector, "NodeSelector is a selector which must be "
	    "true for the pod to fit on a node."),
	    AGE_COL, WIDE_TEMPLATE, W("Selector", cell_selector, "A label query over pods that "
	    "are managed by the daemon set."), END_COLS } },
	{ "Job", { NAME_COL, S("Status", cell_job_status, "Status of the job."),
	    S("Completions", cell_job_completions, "The number of pods which reached phase "
	    "Succeeded."),
	    S("Duration", cell_job_duration, "Time required to complete the job."), AGE_COL,
	    WIDE_TEMPLATE, W("Selector", cell_selector, "A label query over pods that should "
	    "match the pod count."), END_COLS } },
	{ "CronJob", { NAME_COL, S("Schedule", cell_cj_schedule, "The schedule in Cron format"),
	    S("Timezone", cell_cj_timezone, "The time zone name for the given schedule"),
	    { "Suspend", "boolean", 0, cell_cj_suspend, PRINT_BOOL, PRINT_BOTH,
	      "This flag tells the controller to suspend subsequent executions." },
	    I("Active", cell_cj_active, "A list of pointers to currently running jobs."),
	    S("Last Schedule", cell_cj_last, "Information when was the last time the job was "
	    "successfully scheduled."), AGE_COL,
	    W("Containers", cell_cj_containers, D_CONTAINERS),
	    W("Images", cell_cj_images, D_IMAGES),
	    W("Selector", cell_cj_selector, "A label query over pods that should match the pod "
	    "count."), END_COLS } },
	{ "Service", { NAME_COL, S("Type", cell_svc_type, "type determines how the Service is "
	    "exposed."),
	    S("Cluster-IP", cell_cluster_ip, "clusterIP is the IP address of the service."),
	    S("External-IP", cell_external_ip, "externalIPs is a list of IP addresses for "
	    "which nodes in the cluster will also accept traffic for this service."),
	    S("Port(s)", cell_ports, "The list of ports that are exposed by this service."),
	    AGE_COL, W("Selector", cell_svc_selector, "Route service traffic to pods with label "
	    "keys and values matching this selector."), END_COLS } },
	{ "Endpoints", { NAME_COL, S("Endpoints", cell_endpoints, "The set of all endpoints is "
	    "the union of all subsets."), AGE_COL, END_COLS } },
	{ "Node", { NAME_COL, S("Status", cell_node_status, "The status of the node"),
	    S("Roles", cell_node_roles, "The roles of the node"), AGE_COL,
	    S("Version", cell_node_version, "Kubelet Version reported by the node."),
	    W("Internal-IP", cell_node_internal_ip, "List of addresses reachable to the node."),
	    W("External-IP", cell_node_external_ip, "List of addresses reachable to the node."),
	    W("OS-Image", cell_node_os, "OS Image reported by the node."),
	    W("Kernel-Version", cell_node_kernel, "Kernel Version reported by the node."),
	    W("Container-Runtime", cell_node_runtime, "ContainerRuntime Version reported by "
	    "the node."), END_COLS } },
	{ "Event", { S("Last Seen", cell_event_seen, "The time at which the most recent "
	    "occurrence of this event was recorded."),
	    S("Type", cell_event_type, "Type of this event (Normal, Warning)."),
	    S("Reason", cell_event_reason, "This should be a short, machine understandable "
	    "string that gives the reason for the transition into the object's current "
	    "status."),
	    S("Object", cell_event_object, "The object that this event is about."),
	    { "Subobject", "string", 1, cell_event_subobject, PRINT_STR, PRINT_KUBE,
	      "The field of the object this event is about." },
	    { "Source", "string", 1, cell_event_source, PRINT_STR, PRINT_KUBE,
	      "The component reporting this event." },
	    S("Message", cell_event_message, "A human-readable description of the status of "
	    "this operation."),
	    { "First Seen", "string", 1, cell_event_first, PRINT_STR, PRINT_KUBE,
	      "The time at which the event was first recorded." },
	    { "Count", "string", 1, cell_event_count, PRINT_INT, PRINT_KUBE,
	      "The number of times this event has occurred." },
	    { "Name", "string", 1, cell_name, PRINT_STR, PRINT_KUBE, D_NAME }, END_COLS } },
	{ "ConfigMap", { NAME_COL, I("Data", cell_data_count, "Data contains the configuration "
	    "data."), AGE_COL, END_COLS } },
	{ "Secret", { NAME_COL, S("Type", cell_secret_type, "Used to facilitate programmatic "
	    "handling of secret data."),
	    I("Data", cell_data_count, "Data contains the secret data."), AGE_COL, END_COLS } },
	{ "PersistentVolumeClaim", { NAME_COL, S("Status", cell_phase, "phase represents the "
	    "current phase of PersistentVolumeClaim."),
	    S("Volume", cell_pvc_volume, "volumeName is the binding reference to the "
	    "PersistentVolume backing this claim."),
	    S("Capacity", cell_pvc_capacity, "capacity represents the actual resources of the "
	    "underlying volume."),
	    S("Access Modes", cell_pvc_modes, "accessModes contains the actual access modes "
	    "the volume backing the PVC has."),
	    S("StorageClass", cell_pvc_class, "StorageClass of the pvc"),
	    S("VolumeAttributesClass", cell_unset, "VolumeAttributesClass of the pvc"), AGE_COL,
	    W("VolumeMode", cell_pvc_mode, "volumeMode defines what type of volume is required "
	    "by the claim."), END_COLS } },
	{ "ResourceQuota", { NAME_COL, S("Request", cell_quota_request, "Request represents a "
	    "minimum amount of cpu/memory that a container may consume."),
	    S("Limit", cell_quota_limit, "Limits control the maximum amount of cpu/memory that "
	    "a container may use independent of contention on the node."), AGE_COL,
	    END_COLS } },
	/* no printer upstream: the apiserver's default table convertor */
	{ "LimitRange", { NAME_COL, { "Created At", "date", 0, cell_created_at, PRINT_STR,
	    PRINT_BOTH, D_AGE }, END_COLS } },
	{ "RuntimeClass", { NAME_COL, S("Handler", cell_rc_handler, "handler specifies the "
	    "underlying runtime and configuration that the CRI implementation will use."),
	    AGE_COL, END_COLS } },
	{ "ControllerRevision", { NAME_COL, S("Controller", cell_cr_controller, "Controller of "
	    "the object"),
	    { "Revision", "string", 0, cell_cr_revision, PRINT_INT, PRINT_BOTH,
	      "Revision indicates the revision of the state represented by Data." },
	    AGE_COL, END_COLS } },
	{ "HorizontalPodAutoscaler", { NAME_COL, S("Reference", cell_hpa_ref, "reference to "
	    "scaled resource; horizontal pod autoscaler will learn the current resource "
	    "consumption and will set the desired number of pods by using its Scale "
	    "subresource."),
	    S("Targets", cell_hpa_targets, "metrics contains the specifications for which to use "
	    "to calculate the desired replica count."),
	    S("MinPods", cell_hpa_min, "minReplicas is the lower limit for the number of "
	    "replicas to which the autoscaler can scale down."),
	    { "MaxPods", "string", 0, cell_hpa_max, PRINT_INT, PRINT_BOTH,
	      "maxReplicas is the upper limit for the number of replicas to which the "
	      "autoscaler can scale up." },
	    { "Replicas", "string", 0, cell_hpa_replicas, PRINT_INT, PRINT_BOTH,
	      "current number of replicas of pods managed by this autoscaler." },
	    AGE_COL, END_COLS } },
	/* autoscaling.k8s.io CRDs (vertical-pod-autoscaler 1.x) */
	{ "VerticalPodAutoscaler", { NAME_COL,
	    { "Mode", "string", 0, cell_vpa_mode, PRINT_OPT, PRINT_BOTH, NULL },
	    { "CPU", "string", 0, cell_vpa_cpu, PRINT_OPT, PRINT_BOTH, NULL },
	    { "Mem", "string", 0, cell_vpa_mem, PRINT_OPT, PRINT_BOTH, NULL },
	    { "Provided", "string", 0, cell_vpa_provided, PRINT_OPT, PRINT_BOTH, NULL },
	    CRD_AGE, END_COLS } },
	/* argoproj.io CRDs (Argo Rollouts v1.7) */
	{ "Rollout", { NAME_COL,
	    { "Desired", "integer", 0, cell_spec_replicas_opt, PRINT_OPT_INT, PRINT_BOTH,
	      "Number of desired pods" },
	    { "Current", "integer", 0, cell_status_replicas_opt, PRINT_OPT_INT, PRINT_BOTH,
	      "Total number of non-terminated pods targeted by this rollout" },
	    { "Up-to-date", "integer", 0, cell_updated_opt, PRINT_OPT_INT, PRINT_BOTH,
	      "Total number of non-terminated pods targeted by this rollout that have the "
	      "desired template spec" },
	    { "Available", "integer", 0, cell_available_opt, PRINT_OPT_INT, PRINT_BOTH,
	      "Total number of available pods (ready for at least minReadySeconds) targeted "
	      "by this rollout" },
	    CRD_AGE, END_COLS } },
	{ "AnalysisRun", { NAME_COL,
	    { "Status", "string", 0, cell_status_phase_opt, PRINT_OPT, PRINT_KUBE,
	      "AnalysisRun status" },
	    { "Status", "string", 0, cell_run_status, PRINT_STR, PRINT_V6, NULL },
	    CRD_AGE, END_COLS } },
	{ "AnalysisTemplate", { NAME_COL, CRD_AGE, END_COLS } },
	{ "ClusterAnalysisTemplate", { NAME_COL, CRD_AGE, END_COLS } },
	{ "PrometheusRule", { NAME_COL, CRD_AGE, END_COLS } },
	/* argoproj.io Application (Argo CD's CRD) */
	{ "Application", { NAME_COL,
	    { "Sync Status", "string", 0, cell_app_sync, PRINT_OPT, PRINT_BOTH, NULL },
	    { "Health Status", "string", 0, cell_app_health, PRINT_OPT, PRINT_BOTH, NULL },
	    { "Revision", "string", 10, cell_app_revision, PRINT_OPT, PRINT_KUBE, NULL },
	    { "Project", "string", 10, cell_app_project, PRINT_OPT, PRINT_KUBE, NULL },
	    { "Revision", "string", 0, cell_app_revision, PRINT_OPT, PRINT_V6, NULL },
	    CRD_AGE, END_COLS } },
	/* gateway.networking.k8s.io CRDs (Gateway API v1.2, standard channel) */
	{ "GatewayClass", { NAME_COL,
	    { "Controller", "string", 0, cell_gc_controller, PRINT_OPT, PRINT_BOTH, NULL },
	    { "Accepted", "string", 0, cell_gc_accepted, PRINT_OPT, PRINT_BOTH, NULL },
	    CRD_AGE,
	    { "Description", "string", 1, cell_gc_description, PRINT_OPT, PRINT_BOTH, NULL },
	    END_COLS } },
	{ "Gateway", { NAME_COL,
	    { "Class", "string", 0, cell_gw_class, PRINT_OPT, PRINT_KUBE, NULL },
	    { "Address", "string", 0, cell_gw_addresses, PRINT_OPT, PRINT_KUBE, NULL },
	    { "Programmed", "string", 0, cell_gw_programmed_opt, PRINT_OPT, PRINT_KUBE, NULL },
	    { "Class", "string", 0, cell_gw_class, PRINT_STR, PRINT_V6, NULL },
	    { "Address", "string", 0, cell_gw_address, PRINT_STR, PRINT_V6, NULL },
	    { "Programmed", "string", 0, cell_gw_programmed, PRINT_STR, PRINT_V6, NULL },
	    CRD_AGE, END_COLS } },
	{ "HTTPRoute", { NAME_COL,
	    { "Hostnames", "string", 0, cell_route_hostnames_json, PRINT_OPT, PRINT_KUBE, NULL },
	    { "Hostnames", "string", 0, cell_route_hostnames, PRINT_STR, PRINT_V6, NULL },
	    { "Parents", "string", 0, cell_route_parents, PRINT_STR, PRINT_V6, NULL },
	    CRD_AGE, END_COLS } },
};

/* Kinds without a printer of their own: the apiserver's default columns. */
static const struct print_col default_columns[] = { NAME_COL, CRD_AGE, END_COLS };

const struct print_col *
print_columns(const char *kind, size_t *n)
{
	const struct print_col *cols = default_columns;
	for (size_t i = 0; kind && i < ARRAY_SIZE(kind_columns); i++)
		if (strcmp(kind_columns[i].kind, kind) == 0)
			cols = kind_columns[i].cols;
	for (*n = 0; cols[*n].name; (*n)++)
		;
	return cols;
}

void
print_cell(const struct print_col *c, const json_t *obj, int64_t now_ms, struct buf *out)
{
	struct print_ctx ctx = { obj, now_ms, out };
	if (c->cell)
		c->cell(&ctx);
	else
		buf_puts(out, obj_name(obj));
}
