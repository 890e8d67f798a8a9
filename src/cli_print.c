/* cli_print.c — how the CLI shows objects: kubectl's table columns for each
 * kind (one declarative table below), AGE, "kind.group/name" references and
 * JSON output. Used by get, describe and the verbs that print names. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *
cli_kind_ref(const struct kind *k, char *out, size_t len)
{
	return kind_display(k, out, len);
}

const char *
cli_obj_ref(const struct kind *k, const char *name, char *out, size_t len)
{
	char kr[128];
	snprintf(out, len, "%s/%s", cli_kind_ref(k, kr, sizeof kr), name);
	return out;
}

void
cli_age(const char *ts, int64_t now_ms, char *out)
{
	time_t t;
	if (ts == NULL || time_parse_rfc3339(ts, &t) < 0) {
		snprintf(out, 16, "<unknown>");
		return;
	}
	duration_format_age(now_ms - (int64_t)t * 1000, out);
}

char *
cli_json_dump(const json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(4) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
	char *out = xasprintf("%s\n", s ? s : "null");
	free(s);
	return out;
}

/* ---- cell functions --------------------------------------------------- */

struct cell_ctx {
	const json_t *obj;
	int64_t now;
	struct buf *out;
};

typedef void (*cell_fn)(const struct cell_ctx *c);

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
cell_age(const struct cell_ctx *c)
{
	char age[32];
	const char *ts = json_string_value(obj_get_path(c->obj, "metadata.creationTimestamp"));
	cli_age(ts, c->now, age);
	buf_puts(c->out, age);
}

static void
cell_phase(const struct cell_ctx *c)
{
	const char *phase = obj_str_at(c->obj, "status.phase");
	if (!*phase)
		phase = obj_get_path(c->obj, "metadata.deletionTimestamp") ? "Terminating" : "Active";
	buf_puts(c->out, phase);
}

static void
cell_pod_ready(const struct cell_ctx *c)
{
	json_t *cs = obj_get_path(c->obj, "status.containerStatuses");
	size_t i, ready = 0;
	json_t *s;
	json_array_foreach(cs, i, s)
		ready += json_is_true(json_object_get(s, "ready"));
	buf_printf(c->out, "%zu/%zu", ready, json_array_size(obj_get_path(c->obj,
	    "spec.containers")));
}

/* kubectl's STATUS: Terminating, else a waiting/terminated reason of a
 * container, else the phase. */
static void
cell_pod_status(const struct cell_ctx *c)
{
	if (obj_get_path(c->obj, "metadata.deletionTimestamp")) {
		buf_puts(c->out, "Terminating");
		return;
	}
	json_t *cs = obj_get_path(c->obj, "status.containerStatuses");
	size_t i;
	json_t *s;
	json_array_foreach(cs, i, s) {
		const char *r = obj_str_at(s, "state.waiting.reason");
		if (!*r)
			r = obj_str_at(s, "state.terminated.reason");
		if (*r && strcmp(r, "Completed") != 0) {
			buf_puts(c->out, r);
			return;
		}
	}
	const char *phase = obj_str_at(c->obj, "status.phase");
	buf_puts(c->out, *phase ? phase : "Pending");
}

static void
cell_pod_restarts(const struct cell_ctx *c)
{
	long long n = 0;
	size_t i;
	json_t *s;
	json_array_foreach(obj_get_path(c->obj, "status.containerStatuses"), i, s)
		n += json_integer_value(json_object_get(s, "restartCount"));
	buf_printf(c->out, "%lld", n);
}

static void
cell_pod_ip(const struct cell_ctx *c)
{
	put_or_none(c->out, obj_str_at(c->obj, "status.podIP"));
}

static void
cell_pod_node(const struct cell_ctx *c)
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
cell_deploy_ready(const struct cell_ctx *c)
{
	buf_printf(c->out, "%lld/%lld", num(c->obj, "status.readyReplicas"),
	    spec_replicas(c->obj));
}

static void
cell_updated(const struct cell_ctx *c)
{
	buf_printf(c->out, "%lld", num(c->obj, "status.updatedReplicas"));
}

static void
cell_available(const struct cell_ctx *c)
{
	buf_printf(c->out, "%lld", num(c->obj, "status.availableReplicas"));
}

static void
cell_desired(const struct cell_ctx *c)
{
	buf_printf(c->out, "%lld", spec_replicas(c->obj));
}

static void
cell_current(const struct cell_ctx *c)
{
	buf_printf(c->out, "%lld", num(c->obj, "status.replicas"));
}

static void
cell_ready_count(const struct cell_ctx *c)
{
	buf_printf(c->out, "%lld", num(c->obj, "status.readyReplicas"));
}

static void
join_containers(const struct cell_ctx *c, const char *field)
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
cell_containers(const struct cell_ctx *c)
{
	join_containers(c, "name");
}

static void
cell_images(const struct cell_ctx *c)
{
	join_containers(c, "image");
}

static void
put_map(struct buf *b, const json_t *map)
{
	const char *k;
	json_t *v;
	bool first = true;
	json_object_foreach((json_t *)map, k, v) {
		buf_printf(b, "%s%s=%s", first ? "" : ",", k,
		    json_is_string(v) ? json_string_value(v) : "");
		first = false;
	}
	if (first)
		buf_puts(b, "<none>");
}

static void
cell_selector(const struct cell_ctx *c)
{
	put_map(c->out, obj_get_path(c->obj, "spec.selector.matchLabels"));
}

static void
cell_svc_selector(const struct cell_ctx *c)
{
	put_map(c->out, obj_get_path(c->obj, "spec.selector"));
}

static void
cell_svc_type(const struct cell_ctx *c)
{
	const char *t = obj_str_at(c->obj, "spec.type");
	buf_puts(c->out, *t ? t : "ClusterIP");
}

static void
cell_cluster_ip(const struct cell_ctx *c)
{
	put_or_none(c->out, obj_str_at(c->obj, "spec.clusterIP"));
}

static void
cell_external_ip(const struct cell_ctx *c)
{
	json_t *ips = obj_get_path(c->obj, "spec.externalIPs");
	size_t i;
	json_t *ip;
	json_array_foreach(ips, i, ip)
		buf_printf(c->out, "%s%s", i ? "," : "", json_string_value(ip));
	if (json_array_size(ips) == 0)
		buf_puts(c->out, "<none>");
}

static void
cell_ports(const struct cell_ctx *c)
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
cell_endpoints(const struct cell_ctx *c)
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
cell_data_count(const struct cell_ctx *c)
{
	buf_printf(c->out, "%zu", json_object_size(json_object_get(c->obj, "data")) +
	    json_object_size(json_object_get(c->obj, "binaryData")));
}

static void
cell_secret_type(const struct cell_ctx *c)
{
	const char *t = obj_str_at(c->obj, "type");
	buf_puts(c->out, *t ? t : "Opaque");
}

static void
cell_event_seen(const struct cell_ctx *c)
{
	char age[32];
	const char *ts = json_string_value(json_object_get(c->obj, "lastTimestamp"));
	if (ts == NULL)
		ts = json_string_value(json_object_get(c->obj, "eventTime"));
	if (ts == NULL)
		ts = json_string_value(obj_get_path(c->obj, "metadata.creationTimestamp"));
	cli_age(ts, c->now, age);
	buf_puts(c->out, age);
}

static void
cell_event_type(const struct cell_ctx *c)
{
	buf_puts(c->out, obj_str_at(c->obj, "type"));
}

static void
cell_event_reason(const struct cell_ctx *c)
{
	buf_puts(c->out, obj_str_at(c->obj, "reason"));
}

static void
cell_event_object(const struct cell_ctx *c)
{
	const char *kind = obj_str_at(c->obj, "involvedObject.kind");
	for (const char *p = kind; *p; p++)
		buf_putc(c->out, (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p));
	buf_printf(c->out, "/%s", obj_str_at(c->obj, "involvedObject.name"));
}

static void
cell_event_message(const struct cell_ctx *c)
{
	buf_puts(c->out, obj_str_at(c->obj, "message"));
}

static void
cell_hpa_ref(const struct cell_ctx *c)
{
	buf_printf(c->out, "%s/%s", obj_str_at(c->obj, "spec.scaleTargetRef.kind"),
	    obj_str_at(c->obj, "spec.scaleTargetRef.name"));
}

static void
cell_hpa_targets(const struct cell_ctx *c)
{
	cli_hpa_targets(c->obj, c->out);
}

static void
cell_hpa_min(const struct cell_ctx *c)
{
	json_t *m = obj_get_path(c->obj, "spec.minReplicas");
	buf_printf(c->out, "%lld", m ? json_integer_value(m) : 1);
}

static void
cell_hpa_max(const struct cell_ctx *c)
{
	buf_printf(c->out, "%lld", num(c->obj, "spec.maxReplicas"));
}

static void
cell_hpa_replicas(const struct cell_ctx *c)
{
	buf_printf(c->out, "%lld", num(c->obj, "status.currentReplicas"));
}

static void
cell_sts_ready(const struct cell_ctx *c)
{
	buf_printf(c->out, "%lld/%lld", num(c->obj, "status.readyReplicas"),
	    spec_replicas(c->obj));
}

static void
cell_ds_desired(const struct cell_ctx *c)
{
	buf_printf(c->out, "%lld", num(c->obj, "status.desiredNumberScheduled"));
}

static void
cell_ds_current(const struct cell_ctx *c)
{
	buf_printf(c->out, "%lld", num(c->obj, "status.currentNumberScheduled"));
}

static void
cell_ds_ready(const struct cell_ctx *c)
{
	buf_printf(c->out, "%lld", num(c->obj, "status.numberReady"));
}

static void
cell_ds_updated(const struct cell_ctx *c)
{
	buf_printf(c->out, "%lld", num(c->obj, "status.updatedNumberScheduled"));
}

static void
cell_ds_available(const struct cell_ctx *c)
{
	buf_printf(c->out, "%lld", num(c->obj, "status.numberAvailable"));
}

/* Argo Rollouts' columns (kubectl-argo-rollouts list); "-" for what a
 * blue-green rollout does not have. */
static void
cell_ro_strategy(const struct cell_ctx *c)
{
	const char *s = cli_argo_strategy(c->obj);
	buf_puts(c->out, *s ? s : "-");
}

static void
cell_ro_step(const struct cell_ctx *c)
{
	int64_t i, n;
	if (cli_argo_step(c->obj, &i, &n))
		buf_printf(c->out, "%lld/%lld", (long long)i, (long long)n);
	else
		buf_puts(c->out, "-");
}

static void
cell_ro_set_weight(const struct cell_ctx *c)
{
	int64_t w = cli_argo_set_weight(c->obj);
	if (w >= 0)
		buf_printf(c->out, "%lld", (long long)w);
	else
		buf_puts(c->out, "-");
}

static void
cell_ro_phase(const struct cell_ctx *c)
{
	const char *p = obj_str_at(c->obj, "status.phase");
	buf_puts(c->out, *p ? p : "Progressing");
}

/* Argo CD's Application columns (its CRD's printer columns). */
static void
cell_app_sync(const struct cell_ctx *c)
{
	const char *s = obj_str_at(c->obj, "status.sync.status");
	buf_puts(c->out, *s ? s : "Unknown");
}

static void
cell_app_health(const struct cell_ctx *c)
{
	const char *s = obj_str_at(c->obj, "status.health.status");
	buf_puts(c->out, *s ? s : "Unknown");
}

static void
cell_app_revision(const struct cell_ctx *c)
{
	const char *s = obj_str_at(c->obj, "status.sync.revision");
	buf_puts(c->out, *s ? s : "<none>");
}

static void
cell_run_status(const struct cell_ctx *c)
{
	const char *p = obj_str_at(c->obj, "status.phase");
	buf_puts(c->out, *p ? p : "Pending");
}

/* Job and CronJob columns as kubectl's printers (printJob, printCronJob). */
static void
cell_job_status(const struct cell_ctx *c)
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
cell_job_completions(const struct cell_ctx *c)
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
cell_job_duration(const struct cell_ctx *c)
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
cell_cj_schedule(const struct cell_ctx *c)
{
	buf_puts(c->out, obj_str_at(c->obj, "spec.schedule"));
}

static void
cell_cj_timezone(const struct cell_ctx *c)
{
	put_or_none(c->out, obj_str_at(c->obj, "spec.timeZone"));
}

static void
cell_cj_suspend(const struct cell_ctx *c)
{
	buf_puts(c->out, json_is_true(obj_get_path(c->obj, "spec.suspend")) ? "True" : "False");
}

static void
cell_cj_active(const struct cell_ctx *c)
{
	buf_printf(c->out, "%zu", json_array_size(obj_get_path(c->obj, "status.active")));
}

static void
cell_cj_last(const struct cell_ctx *c)
{
	const char *ts = json_string_value(obj_get_path(c->obj, "status.lastScheduleTime"));
	char age[32];
	if (!ts) {
		buf_puts(c->out, "<none>");
		return;
	}
	cli_age(ts, c->now, age);
	buf_puts(c->out, age);
}

/* Gateway API columns: HTTPRoute hostnames ("*": any) and parents
 * ("gateway/edge:http", "service/web"; NS/ first when another namespace);
 * Gateway class, address and Programmed, as the CRDs' printer columns. */
static void
cell_route_hostnames(const struct cell_ctx *c)
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
cell_route_parents(const struct cell_ctx *c)
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
cell_gw_class(const struct cell_ctx *c)
{
	put_or_none(c->out, obj_str_at(c->obj, "spec.gatewayClassName"));
}

static void
cell_gw_address(const struct cell_ctx *c)
{
	const json_t *a = json_array_get(obj_get_path(c->obj, "status.addresses"), 0);
	if (a == NULL)
		a = json_array_get(obj_get_path(c->obj, "spec.addresses"), 0);
	put_or_none(c->out, obj_str_at(a, "value"));
}

static void
cell_gw_programmed(const struct cell_ctx *c)
{
	const json_t *cond;
	size_t i;
	json_array_foreach(obj_get_path(c->obj, "status.conditions"), i, cond)
		if (strcmp(obj_str_at(cond, "type"), "Programmed") == 0) {
			buf_puts(c->out, obj_str_at(cond, "status"));
			return;
		}
	buf_puts(c->out, "Unknown");
}

/* ---- the column table ------------------------------------------------- */

struct column {
	const char *header;
	cell_fn cell;
	bool wide;
};

#define NAME_COL { "NAME", NULL, false }
#define AGE_COL { "AGE", cell_age, false }
#define END_COLS { NULL, NULL, false }

struct kind_columns {
	const char *kind;
	struct column cols[12];
};

static const struct kind_columns kind_columns[] = {
	{ "Namespace", { NAME_COL, { "STATUS", cell_phase, false }, AGE_COL, END_COLS } },
	{ "Pod", { NAME_COL, { "READY", cell_pod_ready, false },
	    { "STATUS", cell_pod_status, false }, { "RESTARTS", cell_pod_restarts, false },
	    AGE_COL, { "IP", cell_pod_ip, true }, { "NODE", cell_pod_node, true }, END_COLS } },
	{ "Deployment", { NAME_COL, { "READY", cell_deploy_ready, false },
	    { "UP-TO-DATE", cell_updated, false }, { "AVAILABLE", cell_available, false },
	    AGE_COL, { "CONTAINERS", cell_containers, true }, { "IMAGES", cell_images, true },
	    { "SELECTOR", cell_selector, true }, END_COLS } },
	{ "ReplicaSet", { NAME_COL, { "DESIRED", cell_desired, false },
	    { "CURRENT", cell_current, false }, { "READY", cell_ready_count, false },
	    AGE_COL, { "CONTAINERS", cell_containers, true }, { "IMAGES", cell_images, true },
	    { "SELECTOR", cell_selector, true }, END_COLS } },
	{ "StatefulSet", { NAME_COL, { "READY", cell_sts_ready, false }, AGE_COL,
	    { "CONTAINERS", cell_containers, true }, { "IMAGES", cell_images, true },
	    END_COLS } },
	{ "DaemonSet", { NAME_COL, { "DESIRED", cell_ds_desired, false },
	    { "CURRENT", cell_ds_current, false }, { "READY", cell_ds_ready, false },
	    { "UP-TO-DATE", cell_ds_updated, false }, { "AVAILABLE", cell_ds_available, false },
	    AGE_COL, { "CONTAINERS", cell_containers, true }, { "IMAGES", cell_images, true },
	    { "SELECTOR", cell_selector, true }, END_COLS } },
	{ "Service", { NAME_COL, { "TYPE", cell_svc_type, false },
	    { "CLUSTER-IP", cell_cluster_ip, false }, { "EXTERNAL-IP", cell_external_ip, false },
	    { "PORT(S)", cell_ports, false }, AGE_COL, { "SELECTOR", cell_svc_selector, true },
	    END_COLS } },
	{ "Endpoints", { NAME_COL, { "ENDPOINTS", cell_endpoints, false }, AGE_COL, END_COLS } },
	{ "ConfigMap", { NAME_COL, { "DATA", cell_data_count, false }, AGE_COL, END_COLS } },
	{ "Secret", { NAME_COL, { "TYPE", cell_secret_type, false },
	    { "DATA", cell_data_count, false }, AGE_COL, END_COLS } },
	{ "Event", { { "LAST SEEN", cell_event_seen, false }, { "TYPE", cell_event_type, false },
	    { "REASON", cell_event_reason, false }, { "OBJECT", cell_event_object, false },
	    { "MESSAGE", cell_event_message, false }, END_COLS } },
	{ "Rollout", { NAME_COL, { "DESIRED", cell_desired, false },
	    { "CURRENT", cell_current, false }, { "UP-TO-DATE", cell_updated, false },
	    { "AVAILABLE", cell_available, false }, AGE_COL,
	    { "STRATEGY", cell_ro_strategy, true }, { "STEP", cell_ro_step, true },
	    { "SET-WEIGHT", cell_ro_set_weight, true }, { "PHASE", cell_ro_phase, true },
	    END_COLS } },
	{ "Job", { NAME_COL, { "STATUS", cell_job_status, false },
	    { "COMPLETIONS", cell_job_completions, false },
	    { "DURATION", cell_job_duration, false }, AGE_COL,
	    { "CONTAINERS", cell_containers, true }, { "IMAGES", cell_images, true },
	    { "SELECTOR", cell_selector, true }, END_COLS } },
	{ "CronJob", { NAME_COL, { "SCHEDULE", cell_cj_schedule, false },
	    { "TIMEZONE", cell_cj_timezone, false }, { "SUSPEND", cell_cj_suspend, false },
	    { "ACTIVE", cell_cj_active, false }, { "LAST SCHEDULE", cell_cj_last, false },
	    AGE_COL, END_COLS } },
	{ "AnalysisRun", { NAME_COL, { "STATUS", cell_run_status, false }, AGE_COL,
	    END_COLS } },
	{ "HTTPRoute", { NAME_COL, { "HOSTNAMES", cell_route_hostnames, false },
	    { "PARENTS", cell_route_parents, false }, AGE_COL, END_COLS } },
	{ "Gateway", { NAME_COL, { "CLASS", cell_gw_class, false },
	    { "ADDRESS", cell_gw_address, false }, { "PROGRAMMED", cell_gw_programmed, false },
	    AGE_COL, END_COLS } },
	{ "Application", { NAME_COL, { "SYNC STATUS", cell_app_sync, false },
	    { "HEALTH STATUS", cell_app_health, false }, { "REVISION", cell_app_revision, false },
	    AGE_COL, END_COLS } },
	{ "HorizontalPodAutoscaler", { NAME_COL, { "REFERENCE", cell_hpa_ref, false },
	    { "TARGETS", cell_hpa_targets, false }, { "MINPODS", cell_hpa_min, false }, { "MAXPODS", cell_hpa_max, false },
	    { "REPLICAS", cell_hpa_replicas, false }, AGE_COL, END_COLS } },
};

static const struct column default_columns[] = { NAME_COL, AGE_COL, END_COLS };

static const struct column *
columns_for(const char *kind)
{
	for (size_t i = 0; kind && i < ARRAY_SIZE(kind_columns); i++)
		if (strcmp(kind_columns[i].kind, kind) == 0)
			return kind_columns[i].cols;
	return default_columns;
}

/* ---- tables ----------------------------------------------------------- */

struct cli_table {
	const struct kind *k;
	const struct column *cols;
	int flags;
	int64_t now;
	char **cells;		/* row-major, ncols per row; row 0 = header */
	size_t ncols, nrows;
	size_t *width;
	size_t rendered;	/* rows already rendered */
};

static bool
col_shown(const struct cli_table *t, const struct column *c)
{
	return !c->wide || (t->flags & CLI_TBL_WIDE);
}

static void
table_push_row(struct cli_table *t, char **row)
{
	t->cells = xrealloc(t->cells, (t->nrows + 1) * t->ncols * sizeof *t->cells);
	for (size_t i = 0; i < t->ncols; i++) {
		t->cells[t->nrows * t->ncols + i] = row[i];
		size_t w = strlen(row[i]);
		if (w > t->width[i])
			t->width[i] = w;
	}
	t->nrows++;
}

struct cli_table *
cli_table_new(const struct kind *k, const char *kind, int flags, int64_t now_ms)
{
	struct cli_table *t = xcalloc(1, sizeof *t);
	t->k = k;
	t->cols = columns_for(kind ? kind : k ? k->kind : NULL);
	t->flags = flags;
	t->now = now_ms;
	t->ncols = (flags & CLI_TBL_NS) ? 1 : 0;
	for (const struct column *c = t->cols; c->header; c++)
		t->ncols += col_shown(t, c);
	t->ncols += (flags & CLI_TBL_LABELS) ? 1 : 0;
	t->width = xcalloc(t->ncols, sizeof *t->width);
	char **hdr = xcalloc(t->ncols, sizeof *hdr);
	size_t n = 0;
	if (flags & CLI_TBL_NS)
		hdr[n++] = xstrdup("NAMESPACE");
	for (const struct column *c = t->cols; c->header; c++)
		if (col_shown(t, c))
			hdr[n++] = xstrdup(c->header);
	if (flags & CLI_TBL_LABELS)
		hdr[n++] = xstrdup("LABELS");
	table_push_row(t, hdr);
	free(hdr);
	if (flags & CLI_TBL_NOHEAD) {	/* the header takes no room then */
		t->rendered = 1;
		memset(t->width, 0, t->ncols * sizeof *t->width);
	}
	return t;
}

static char *
name_cell(const struct cli_table *t, const json_t *obj)
{
	char ref[512];
	if ((t->flags & CLI_TBL_KINDREF) && t->k)
		return xstrdup(cli_obj_ref(t->k, obj_name(obj), ref, sizeof ref));
	return xstrdup(obj_name(obj));
}

void
cli_table_add(struct cli_table *t, const json_t *obj)
{
	char **row = xcalloc(t->ncols, sizeof *row);
	size_t n = 0;
	if (t->flags & CLI_TBL_NS)
		row[n++] = xstrdup(obj_namespace(obj));
	for (const struct column *c = t->cols; c->header; c++) {
		if (!col_shown(t, c))
			continue;
		if (c->cell == NULL) {
			row[n++] = name_cell(t, obj);
			continue;
		}
		struct buf b = BUF_INIT;
		struct cell_ctx ctx = { obj, t->now, &b };
		c->cell(&ctx);
		row[n++] = buf_steal(&b);
	}
	if (t->flags & CLI_TBL_LABELS) {
		struct buf b = BUF_INIT;
		put_map(&b, obj_labels(obj));
		row[n++] = buf_steal(&b);
	}
	table_push_row(t, row);
	free(row);
}

static void
render_row(const struct cli_table *t, size_t r, struct buf *out)
{
	for (size_t i = 0; i < t->ncols; i++) {
		const char *s = t->cells[r * t->ncols + i];
		if (i + 1 == t->ncols) {
			buf_puts(out, s);
			break;
		}
		buf_printf(out, "%-*s", (int)(t->width[i] + 3), s);
	}
	buf_putc(out, '\n');
}

char *
cli_table_render(struct cli_table *t)
{
	struct buf out = BUF_INIT;
	for (size_t r = (t->flags & CLI_TBL_NOHEAD) ? 1 : 0; r < t->nrows; r++)
		render_row(t, r, &out);
	t->rendered = t->nrows;
	return buf_steal(&out);
}

char *
cli_table_render_new_rows(struct cli_table *t)
{
	struct buf out = BUF_INIT;
	for (size_t r = t->rendered; r < t->nrows; r++)
		render_row(t, r, &out);
	t->rendered = t->nrows;
	return buf_steal(&out);
}

void
cli_table_free(struct cli_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->width);
	free(t);
}
