/* server.c — `v6 server`: parses the server's flags, opens the store, starts
 * the API server and the controllers on one libuv loop, and shuts them down
 * in order on SIGTERM / SIGINT. */
#include "server.h"
#include "addon.h"
#include "alert.h"
#include "analysis.h"
#include "api.h"
#include "auth.h"
#include "flags.h"
#include "gitops.h"
#include "image.h"
#include "ctrl.h"
#include "dns.h"
#include "hpa.h"
#include "vpa.h"
#include "log.h"
#include "mem_trim.h"
#include "node.h"
#include "obs_otlp.h"
#include "obs_loki.h"
#include "obs_metrics.h"
#include "obs_custom.h"
#include "obs_traffic.h"
#include "node_pod.h"
#include "node_runtime.h"
#include "obj_schema.h"
#include "proc.h"
#include "proxy.h"
#include "pki_renew.h"
#include "quantity.h"
#include "store_crypt.h"
#include "ui.h"

#include <errno.h>
#include <ftw.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Cluster IPs with --pod-network cni (kubeadm's default Service range). */
#define SERVER_ROUTABLE_SERVICE_CIDR "10.96.0.0/16"

struct server_opts {
	char *data_dir;
	char *host;
	int port;
	int64_t journal_limit;
	size_t max_body;
	int max_backoff_s;
	int64_t log_max_bytes;		/* --container-log-max-size; 0: the runtime's default */
	int log_max_files;		/* --container-log-max-files (live file included) */
	char *node_name;
	unsigned disabled;	/* bit i: parts[i] turned off with --controllers */
	int64_t traffic_period_ms;	/* --traffic-period; 0: obs_traffic's default */
	int64_t event_ttl_ms;		/* --event-ttl; 0: one hour */
	int64_t hpa_sync_ms;		/* --hpa-sync-period; 0: 15 s */
	int64_t vpa_interval_ms;	/* --vpa-recommender-interval; 0: 1 min */
	int64_t vpa_checkpoint_ms;	/* --vpa-checkpoints-interval; 0: 10 min */
	int64_t app_resync_ms;		/* --app-resync-period; 0: 3 min */
	int64_t journal_retention_ms;	/* --journal-retention; -1: default */
	int64_t journal_min;		/* --journal-min; -1: default */
	const char *default_runtime;	/* --default-runtime; NULL: decided at start */
	char **insecure_registries;	/* --insecure-registry, repeatable */
	size_t ninsecure;
	const char *registry_certs_dir;	/* --registry-certs-dir; NULL: IMG_CERTS_DIR */
	struct img_gc_config image_gc;	/* --image-gc-*, --minimum-image-ttl-duration */
	char *otlp_endpoint;		/* --otlp-endpoint; NULL: the OTEL_* variables */
	char *sample_ratio;		/* --trace-sample-ratio, for the proxy */
	char *cluster_dns;		/* --cluster-dns; NULL: no cluster DNS */
	char *dns_upstream;		/* --dns-upstream; NULL: /etc/resolv.conf's */
	bool pod_network;		/* --pod-network cni */
	struct ncni_config cni;		/* --bridge, --pod-network-cidr, ... (strings owned) */
	char *service_cidr;		/* --service-cidr as given */
	struct obs_loki_config loki;	/* --loki-*; url NULL: no shipper */
	char *encryption_config;	/* --encryption-provider-config; NULL: none */
	char *audit_log;		/* --audit-log-path; NULL: no audit log */
	char *audit_policy;		/* --audit-policy-file; NULL: Metadata for all */
	char *token_auth_file;		/* --token-auth-file; NULL: none */
	struct promrules_config rules;	/* --prometheus-*; dir NULL: DATA/prometheus-rules */
	struct alert_config alerts;	/* --alertmanager-url, --alert-* (url owned) */
	bool insecure_http;		/* --insecure-http: plain HTTP, loopback only */
	int64_t cert_lifetime_ms;	/* --cert-lifetime; 0: a year */
};

struct server {
	uv_loop_t *loop;
	struct store *st;
	struct store_crypt *crypt;	/* --encryption-provider-config; NULL: none */
	struct api_audit *audit;	/* --audit-log-path; NULL: none */
	struct api *api;
	struct pki_renew *pki;		/* HTTPS: DATA/pki and its renewal; NULL with --insecure-http */
	struct ctrl_gc *gc;
	struct ctrl *ctrls[32];		/* the controllers on the core, by part index */
	struct ctrl_rollout *rollout;
	struct ctrl_endpoints *eps;
	struct ctrl_routes *routes;
	struct ctrl_gwstatus *gwstatus;
	struct proxy_feed *feed;
	struct obs_traffic *traffic;
	struct ctrl_analysis *analysis;
	struct node *node;
	struct ctrl_hpa *hpa;
	struct ctrl_vpa *vpa;
	struct obs_custom *custom;
	struct img_store *images;
	struct img_gc *image_gc;
	struct dns_server *dns;
	struct obs_loki *loki;
	struct ctrl_promrules *promrules;
	struct ctrl_app *apps;
	struct alert_api *alerts;
	char *node_state, *proxy_state, *exe;
	unsigned disabled;	/* bit i: parts[i] is off (or stopped) */
	uv_signal_t sigterm, sigint;
	struct otlp_exporter *otlp;	/* the server's own spans (rollouts); NULL: off */
	char *otlp_url;			/* where spans go: also the proxy's */
	struct mem_trim *trim;		/* the heap trimmed after bursts of writes */
};

/* ---- the parts of the server, started from one table ------------------- */

static bool part_on(const struct server_opts *o, const char *name);

static int
gc_start(struct server *s, const struct server_opts *o)
{
	(void)o;
	return ctrl_gc_start(s->api, &s->gc);
}

static void
gc_stop(struct server *s)
{
	if (s->gc)
		ctrl_gc_stop(s->gc);
	s->gc = NULL;
}

static int
endpoints_start(struct server *s, const struct server_opts *o)
{
	(void)o;
	return ctrl_endpoints_start(s->api, &s->eps);
}

static void
endpoints_stop(struct server *s)
{
	if (s->eps)
		ctrl_endpoints_stop(s->eps);
	s->eps = NULL;
}

/* Cluster DNS (dns_server.c), only with --cluster-dns. */
static int
dns_start(struct server *s, const struct server_opts *o)
{
	if (!o->cluster_dns)
		return 0;
	struct dns_config dc = { .listen = o->cluster_dns, .upstream = o->dns_upstream };
	return dns_server_start(s->api, &dc, &s->dns);
}

static void
dns_stop(struct server *s)
{
	dns_server_stop(s->dns);
	s->dns = NULL;
}

static int
gwstatus_start(struct server *s, const struct server_opts *o)
{
	(void)o;
	return ctrl_gwstatus_start(s->api, part_on(o, "proxy"), &s->gwstatus);
}

static void
gwstatus_stop(struct server *s)
{
	if (s->gwstatus)
		ctrl_gwstatus_stop(s->gwstatus);
	s->gwstatus = NULL;
}

static int
rollout_start(struct server *s, const struct server_opts *o)
{
	(void)o;
	int rc = ctrl_rollout_start(s->api, &s->rollout);
	if (rc == 0 && s->otlp)
		ctrl_rollout_set_tracing(s->rollout, s->otlp);
	return rc;
}

static void
rollout_stop(struct server *s)
{
	ctrl_rollout_stop(s->rollout);
	s->rollout = NULL;
}

/* The Rollout controller's wait for the proxy to route by a write. */
static void
routes_wait(void *arg, int64_t rv, unsigned timeout_ms, void (*cb)(void *, bool),
    void *cb_arg)
{
	struct server *s = arg;
	if (!s->routes) {
		cb(cb_arg, true);
		return;
	}
	ctrl_routes_wait_applied(s->routes, rv, timeout_ms, cb, cb_arg);
}

/* The data plane: the proxy process's feed, the routing tables it gets and
 * the traffic figures read back from it; the Rollout controller (started
 * before) waits on its acknowledgements. */
static int
proxy_start(struct server *s, const struct server_opts *o)
{
	const char *args[5] = { 0 };
	int na = 0;
	if (s->otlp_url) {
		args[na++] = "--otlp-endpoint";
		args[na++] = s->otlp_url;
	}
	if (o->sample_ratio) {
		args[na++] = "--trace-sample-ratio";
		args[na++] = o->sample_ratio;
	}
	struct proxy_feed_config pc = { .state_dir = s->proxy_state, .self_exe = s->exe,
		.admin_address = "127.0.0.1:0", .proxy_args = args };
	int rc;
	if ((rc = proxy_feed_start(s->loop, &pc, &s->feed)) < 0 ||
	    (rc = ctrl_routes_start(s->api, s->feed, &s->routes)) < 0 ||
	    (rc = obs_traffic_start(s->loop, s->api, s->feed, &s->traffic)) < 0)
		return rc;
	if (s->rollout)
		ctrl_rollout_set_routes_wait(s->rollout, routes_wait, s);
	if (o->traffic_period_ms > 0)
		obs_traffic_set_period(s->traffic, (unsigned)o->traffic_period_ms);
	return 0;
}

static void
proxy_stop(struct server *s)
{
	if (s->routes)
		ctrl_routes_stop(s->routes);
	if (s->traffic)
		obs_traffic_stop(s->traffic);
	if (s->feed)
		proxy_feed_stop(s->feed);	/* the proxy process keeps serving */
	s->routes = NULL;
	s->traffic = NULL;
	s->feed = NULL;
}

static int
analysis_start(struct server *s, const struct server_opts *o)
{
	(void)o;
	return ctrl_analysis_start(s->api, s->traffic, &s->analysis);
}

static void
analysis_stop(struct server *s)
{
	if (s->analysis)
		ctrl_analysis_stop(s->analysis);	/* reads s->traffic: stopped before it */
	s->analysis = NULL;
}

/* The node agent's drain hook: a terminating pod leaves the proxy's
 * routing table before it gets SIGTERM (at most 2 s). */
static void
drain_pod_ip(void *arg, const char *ip, void (*done)(void *, bool), void *done_arg)
{
	struct server *s = arg;
	if (!s->routes) {
		done(done_arg, true);
		return;
	}
	ctrl_routes_drain(s->routes, ip, 2000, done, done_arg);
}

/* The image store (DATA/node/images) and its images.v6.dev API. */
static int
images_start(struct server *s, const struct server_opts *o)
{
	char *dir = xasprintf("%s/images", s->node_state);
	int rc = img_store_open(api_loop(s->api), dir, &s->images);
	free(dir);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < o->ninsecure; i++)
		img_store_add_insecure(s->images, o->insecure_registries[i]);
	if (o->registry_certs_dir)
		img_store_set_certs_dir(s->images, o->registry_certs_dir);
	img_api_register(s->api, s->images);
	return img_gc_start(s->images, &o->image_gc, &s->image_gc);
}

static void
images_stop(struct server *s)
{
	img_gc_stop(s->image_gc);
	s->image_gc = NULL;
	img_store_close(s->images);
	s->images = NULL;
}

/* What pods are told (OTEL_EXPORTER_OTLP_ENDPOINT): the base URL as
 * configured, not the /v1/traces URL V6 derives from it. */
static const char *
pod_otlp_endpoint(const struct server_opts *o)
{
	const char *v;
	if (o->otlp_endpoint)
		return o->otlp_endpoint;
	if ((v = getenv("OTEL_EXPORTER_OTLP_ENDPOINT")) && *v)
		return v;
	if ((v = getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) && *v)
		return v;
	return NULL;
}

static int
node_part_start(struct server *s, const struct server_opts *o)
{
	struct ncni_config cni = o->cni;	/* node_start copies it */
	cni.state_dir = s->node_state;
	struct node_config nc = { .node_name = o->node_name, .state_dir = s->node_state,
		.images = s->images,
		.self_exe = s->exe, .backoff_max_s = o->max_backoff_s,
		.log_max_bytes = o->log_max_bytes,
		.log_max_files = o->log_max_files > 0 ? o->log_max_files - 1 : 0,
		.drain = drain_pod_ip, .drain_arg = s, .cluster_dns = dns_server_ip(s->dns),
		.pod_network = o->pod_network ? &cni : NULL, .otlp_endpoint = pod_otlp_endpoint(o) };
	return node_start(s->api, &nc, &s->node);
}

static void
node_part_stop(struct server *s)
{
	if (s->node)
		node_stop(s->node);
	s->node = NULL;
}

/* The HPA reads pod usage from the node agent (metrics.k8s.io). */
static json_t *
hpa_pod_usage(void *arg, const char *ns, const char *pod)
{
	struct server *s = arg;
	return s->node ? node_pod_metrics(s->node, ns, pod) : NULL;
}

/* The HPA and the custom / external metrics APIs it reads (the adapter a
 * cluster runs beside it). */
static void
hpa_activate(void *arg, const char *service)
{
	struct server *s = arg;
	if (s->hpa)
		ctrl_hpa_activate(s->hpa, service);
}

static int
hpa_start(struct server *s, const struct server_opts *o)
{
	int rc = obs_custom_start(s->loop, s->api, s->traffic, o->rules.url, &s->custom);
	if (rc == 0)
		rc = ctrl_hpa_start(s->api, o->hpa_sync_ms, hpa_pod_usage, s, s->custom, &s->hpa);
	if (rc == 0 && s->feed)
		proxy_feed_on_activate(s->feed, hpa_activate, s);	/* scale from zero */
	return rc;
}

static void
hpa_stop(struct server *s)
{
	if (s->feed)
		proxy_feed_on_activate(s->feed, NULL, NULL);
	ctrl_hpa_stop(s->hpa);
	obs_custom_stop(s->custom);
	s->hpa = NULL;
	s->custom = NULL;
}

/* The VPA recommender reads the same usage as the HPA. */
static int
vpa_start(struct server *s, const struct server_opts *o)
{
	return ctrl_vpa_start(s->api, o->vpa_interval_ms, o->vpa_checkpoint_ms, hpa_pod_usage,
	    s, &s->vpa);
}

static void
vpa_stop(struct server *s)
{
	ctrl_vpa_stop(s->vpa);
	s->vpa = NULL;
}

/* The Loki shipper's app label: the pod's "app" label from the store, else
 * its "app.kubernetes.io/name". */
static void
pod_app_label(void *arg, const char *ns, const char *pod, char *out, size_t outlen)
{
	struct server *s = arg;
	json_t *o = NULL;
	if (store_get(api_store(s->api), "pods", ns, pod, &o) == 0) {
		json_t *labels = json_object_get(json_object_get(o, "metadata"), "labels");
		const char *app = json_string_value(json_object_get(labels, "app"));
		if (app == NULL)
			app = json_string_value(json_object_get(labels, "app.kubernetes.io/name"));
		if (app)
			snprintf(out, outlen, "%s", app);
		json_decref(o);
	}
}

static int
logship_start(struct server *s, const struct server_opts *o)
{
	if (o->loki.url == NULL)
		return 0;
	char host[256] = "";
	gethostname(host, sizeof host - 1);
	struct obs_loki_config c = o->loki;
	c.state_dir = s->node_state;
	c.node_name = o->node_name ? o->node_name : host;
	char *proxy_log = xasprintf("%s/proxy.log", s->proxy_state);
	c.proxy_log = part_on(o, "proxy") ? proxy_log : NULL;
	c.app = pod_app_label;
	c.app_arg = s;
	int rc = obs_loki_start(s->loop, &c, &s->loki);
	if (rc < 0)
		log_error("server", "--loki-url %s: expected http://HOST:PORT[/PATH] with a host "
		    "that resolves", o->loki.url);
	free(proxy_log);
	return rc;
}

static void
logship_stop(struct server *s)
{
	obs_loki_stop(s->loki);
	s->loki = NULL;
}

/* PrometheusRules -> rule files -> a reloaded Prometheus (ctrl_promrules.c). */
static int
promrules_start(struct server *s, const struct server_opts *o)
{
	struct promrules_config c = o->rules;
	char *dir = c.dir ? NULL : xasprintf("%s/prometheus-rules", o->data_dir);
	if (dir)
		c.dir = dir;
	int rc = ctrl_promrules_start(s->api, &c, &s->promrules);
	free(dir);
	return rc;
}

static void
promrules_stop(struct server *s)
{
	ctrl_promrules_stop(s->promrules);
	s->promrules = NULL;
}

/* Alerts and silences through the API, the webhook receiver (alert_api.c). */
static int
alerts_start(struct server *s, const struct server_opts *o)
{
	struct alert_config c = o->alerts;
	c.state_dir = o->data_dir;
	return alert_api_start(s->api, &c, &s->alerts);
}

static void
alerts_stop(struct server *s)
{
	alert_api_stop(s->alerts);
	s->alerts = NULL;
}

/* Argo CD's Applications (ctrl_app.c), git cache in DATA/gitops. */
static int
apps_start(struct server *s, const struct server_opts *o)
{
	char *dir = xasprintf("%s/gitops", o->data_dir);
	struct app_config c = { dir, o->app_resync_ms };
	int rc = ctrl_app_start(s->api, &c, &s->apps);
	free(dir);
	return rc;
}

static void
apps_stop(struct server *s)
{
	ctrl_app_stop(s->apps);
	s->apps = NULL;
}

/* The parts in start order (stopped in reverse). --controllers turns them
 * off by name, as kube-controller-manager's --controllers does
 * ("*,-deployment"): tests that play a controller's role themselves use it,
 * and so can an edge box that never runs Deployments. A part is either a
 * controller on the core (ctrl; ctrl_stop stops it) or has its own
 * start/stop. */
static const struct server_part {
	const char *name;
	int (*ctrl)(struct api *api, struct ctrl **out);
	int (*start)(struct server *s, const struct server_opts *o);
	void (*stop)(struct server *s);
} parts[] = {
	{ "garbagecollector", NULL, gc_start, gc_stop },
	{ "replicaset", ctrl_replicaset_start, NULL, NULL },
	{ "deployment", ctrl_deployment_start, NULL, NULL },
	{ "rollout", NULL, rollout_start, rollout_stop },
	{ "daemonset", ctrl_daemonset_start, NULL, NULL },
	{ "statefulset", ctrl_statefulset_start, NULL, NULL },
	{ "job", ctrl_job_start, NULL, NULL },
	{ "cronjob", ctrl_cronjob_start, NULL, NULL },
	{ "serviceaccount", ctrl_serviceaccount_start, NULL, NULL },
	{ "clusterrole-aggregation", ctrl_clusterrole_aggregation_start, NULL, NULL },
	{ "resourcequota", ctrl_quota_start, NULL, NULL },
	{ "endpoints", NULL, endpoints_start, endpoints_stop },
	{ "dns", NULL, dns_start, dns_stop },
	{ "gwstatus", NULL, gwstatus_start, gwstatus_stop },
	{ "proxy", NULL, proxy_start, proxy_stop },
	{ "analysis", NULL, analysis_start, analysis_stop },
	{ "images", NULL, images_start, images_stop },
	{ "node", NULL, node_part_start, node_part_stop },
	{ "horizontalpodautoscaling", NULL, hpa_start, hpa_stop },
	{ "verticalpodautoscaling", NULL, vpa_start, vpa_stop },
	{ "logship", NULL, logship_start, logship_stop },
	{ "promrules", NULL, promrules_start, promrules_stop },
	{ "gitops", NULL, apps_start, apps_stop },
	{ "alerts", NULL, alerts_start, alerts_stop },
};

static bool
part_on(const struct server_opts *o, const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++)
		if (strcmp(parts[i].name, name) == 0)
			return !(o->disabled & (1u << i));
	return false;
}

static int
parse_controllers(const char *list, unsigned *disabled)
{
	char *copy = xstrdup(list), *save = NULL;
	int rc = 0;
	*disabled = (1u << ARRAY_SIZE(parts)) - 1;
	for (char *t = strtok_r(copy, ",", &save); t && rc == 0; t = strtok_r(NULL, ",", &save)) {
		bool off = *t == '-';
		const char *name = t + off;
		if (strcmp(name, "*") == 0 && !off) {
			*disabled = 0;
			continue;
		}
		rc = -EINVAL;
		for (size_t i = 0; i < ARRAY_SIZE(parts); i++)
			if (strcmp(name, parts[i].name) == 0) {
				*disabled = off ? *disabled | (1u << i) : *disabled & ~(1u << i);
				rc = 0;
			}
	}
	free(copy);
	return rc;
}

/* "*, garbagecollector, replicaset, ..." for messages (caller frees). */
static char *
part_names(void)
{
	char *out = xstrdup("*");
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++) {
		char *next = xasprintf("%s, %s", out, parts[i].name);
		free(out);
		out = next;
	}
	return out;
}

static const struct flag_def server_flags[] = {
	{ "--data-dir", "DIR", "where the store lives (default $V6_DATA_DIR, else "
	    "/var/lib/v6 as root, else ~/.local/share/v6)" },
	{ "--listen", "ADDR:PORT", "address of the API server (default 127.0.0.1:6443; "
	    "[::1]:6443 for IPv6; port 0 picks a free port, written to DIR/server.address)" },
	{ "--log-level", "LEVEL", "debug, info, warn or error (default info)" },
	{ "--log-format", "FORMAT", "json (one object per line: time, level, component, msg, "
	    "trace_id...; the default) or text; the proxy it starts follows" },
	{ "--journal-limit", "N", "watch events kept for resuming watches (default 100000)" },
	{ "--journal-retention", "DURATION", "watch events older than this are dropped, as "
	    "Kubernetes compacts etcd (default 5m; 0 keeps them up to --journal-limit)" },
	{ "--journal-min", "N", "newest watch events kept whatever their age (default 100)" },
	{ "--event-ttl", "DURATION", "how long an Event is kept after it last happened "
	    "(default 1h, at least 1s)" },
	{ "--hpa-sync-period", "DURATION", "how often each HorizontalPodAutoscaler is "
	    "reconciled, as kube-controller-manager's --horizontal-pod-autoscaler-sync-period "
	    "(default 15s, at least 100ms)" },
	{ "--vpa-recommender-interval", "DURATION", "how often the VPA recommender samples "
	    "the usage of each VerticalPodAutoscaler's pods and updates its recommendation, "
	    "as the recommender's --recommender-interval (default 1m, at least 100ms)" },
	{ "--vpa-checkpoints-interval", "DURATION", "how often a VPA's usage history is "
	    "saved as VerticalPodAutoscalerCheckpoints (default 10m, at least 100ms)" },
	{ "--max-body-bytes", "N", "largest request body accepted (default 3145728)" },
	{ "--max-backoff", "DURATION", "node-wide CrashLoopBackOff cap, lower for edge "
	    "devices (default 5m, at least 1s)" },
	{ "--node-name", "NAME", "name of this node (default: the host name)" },
	{ "--container-log-max-size", "QUANTITY", "a container's log file is rotated past "
	    "this size, as kubelet's containerLogMaxSize (default 10Mi, at least 4Ki)" },
	{ "--container-log-max-files", "N", "log files kept per container, the live one "
	    "included, as kubelet's containerLogMaxFiles (default 3, at least 2)" },
	{ "--controllers", "LIST", "parts to run: * for all, -NAME to turn one off; names: "
	    "garbagecollector, replicaset, deployment, rollout, analysis, statefulset, "
	    "daemonset, job, cronjob, endpoints, dns, gwstatus, images, node, logship, proxy, "
	    "promrules, horizontalpodautoscaling, verticalpodautoscaling, gitops, alerts (default *)" },
	{ "--app-resync-period", "DURATION", "how often each Application's repository is "
	    "fetched and compared, as Argo CD's timeout.reconciliation (default 3m, at least "
	    "100ms); a push to /api/webhook fetches at once" },
	{ "--traffic-period", "DURATION", "how often the proxy's traffic figures are sampled "
	    "for ServiceTraffic and canary analysis (default 5s, at least 200ms)" },
	{ "--pod-cidr", "CIDR", "loopback range pod addresses come from, /16 to /24 inside "
	    "127.0.0.0/8 but not 127.0.0.0/16 (default 127.1.0.0/16)" },
	{ "--service-cidr", "CIDR", "loopback range Service cluster IPs come from, like "
	    "--pod-cidr (default " API_SERVICE_CIDR "), routable with --pod-network cni; give "
	    "each server on a machine its own" },
	{ "--cluster-dns", "IP[:PORT]", "serve cluster DNS (*.svc.cluster.local) there, UDP "
	    "and TCP, and give pods a resolv.conf naming it (port 53 for that); an address "
	    "in --service-cidr also gets the kube-system/kube-dns Service (default: off; with "
	    "--pod-network cni, .10 of --service-cidr)" },
	{ "--dns-upstream", "IP[:PORT]", "where cluster DNS forwards other names (default: "
	    "the first nameserver of /etc/resolv.conf)" },
	{ "--pod-network", "none|cni", "cni: each runc pod gets its own network namespace on "
	    "a host bridge through the CNI plugins, and Service cluster IPs move to a routable "
	    "--service-cidr (default " SERVER_ROUTABLE_SERVICE_CIDR ") held on lo; none: every "
	    "pod on the host's network (default none)" },
	{ "--bridge", "NAME", "the pod network's bridge (default " NCNI_DEFAULT_BRIDGE ")" },
	{ "--pod-network-cidr", "CIDR", "the pod network's subnet (default " NCNI_DEFAULT_CIDR ")" },
	{ "--pod-network-masquerade", NULL, "give pods a default route and NAT to the outside "
	    "(default: pods reach only pods, Services and the cluster DNS)" },
	{ "--insecure-http", NULL, "serve the API over plain HTTP instead of HTTPS, only on a "
	    "loopback --listen address (default: HTTPS with the certificates in DIR/pki)" },
	{ "--cert-lifetime", "DURATION", "lifetime of the serving and admin certificates, "
	    "renewed online with a third of it left (default 8760h, at least 3s)" },
	{ "--insecure-registry", "HOST:PORT", "pull from this registry over plain HTTP "
	    "(loopback registries always may); repeatable" },
	{ "--registry-certs-dir", "DIR", "a private registry's CA and client certificate, as "
	    "Docker's certs.d: DIR/HOST:PORT/ca.crt, client.cert, client.key (default "
	    IMG_CERTS_DIR ")" },
	{ "--image-gc-high-threshold", "PERCENT", "disk use of the image store's file "
	    "system at which unused images are removed, as the kubelet's (default 85)" },
	{ "--image-gc-low-threshold", "PERCENT", "disk use the image GC brings it back "
	    "under (default 80)" },
	{ "--minimum-image-ttl-duration", "DURATION", "an image unused for less than this is "
	    "never collected (default 2m)" },
	{ "--image-gc-period", "DURATION", "how often the image GC checks the disk "
	    "(default 5m, the kubelet's)" },
	{ "--otlp-endpoint", "URL", "OTLP/HTTP collector for traces (/v1/traces appended): "
	    "the proxy's request spans, the rollout spans, and OTEL_EXPORTER_OTLP_ENDPOINT of "
	    "pods (default $OTEL_EXPORTER_OTLP_ENDPOINT; none: no spans)" },
	{ "--trace-sample-ratio", "R", "share of new traces the proxy samples, 0..1 "
	    "(default 1); continued traces follow the caller's sampled flag" },
	{ "--loki-url", "URL", "ship pod logs and V6's own logs to this Loki push URL "
	    "(http://HOST:PORT, path /loki/api/v1/push by default; off when not given)" },
	{ "--loki-batch-size", "QUANTITY", "log text per push (default 1Mi)" },
	{ "--loki-batch-wait", "DURATION", "longest a line waits before it is pushed "
	    "(default 1s)" },
	{ "--loki-spool-size", "QUANTITY", "gzipped batches not yet taken by Loki, kept "
	    "on disk (DATA/node/loki/spool, resent after a restart) and in memory; past it "
	    "the oldest are dropped (default 64Mi)" },
	{ "--loki-max-line-size", "QUANTITY", "longer log lines are split into pieces of "
	    "this size (default 256Ki)" },
	{ "--loki-timeout", "DURATION", "one push, then it is retried (default 10s)" },
	{ "--encryption-provider-config", "FILE", "encrypt Secrets (and other resources it "
	    "lists) in the store with the keys of this EncryptionConfiguration "
	    "(apiserver.config.k8s.io/v1: aesgcm, secretbox, identity); the first provider "
	    "encrypts, all decrypt; at start every stored Secret is rewritten with the first "
	    "(default: stored unencrypted)" },
	{ "--audit-log-path", "FILE", "append an audit.k8s.io/v1 Event per request stage to "
	    "FILE as JSON lines (- for stdout; default: no audit log); Secret and ConfigMap "
	    "bodies are never recorded" },
	{ "--audit-policy-file", "FILE", "an audit.k8s.io/v1 Policy: the first matching rule "
	    "sets a request's level (None, Metadata, Request, RequestResponse) (default: "
	    "Metadata for every request)" },
	{ "--token-auth-file", "FILE", "static bearer tokens, Kubernetes' CSV lines "
	    "token,user,uid,\"group1,group2\" (default: none)" },
	{ "--default-runtime", "NAME", "runtime of pods without runtimeClassName: runc or "
	    "process (default runc when the server is root and runc is on PATH, else "
	    "process)" },
	{ "--prometheus-rules-dir", "DIR", "PrometheusRule objects are written there as "
	    "Prometheus rule files NS_NAME.yaml (default DATA_DIR/prometheus-rules)" },
	{ "--prometheus-url", "URL", "the Prometheus (http://IP:PORT, started with "
	    "--web.enable-lifecycle) reloaded after a rule file changed; its /api/v1/rules "
	    "says which rules it loaded (annotation v6.io/rules-loaded)" },
	{ "--prometheus-rule-selector", "SELECTOR", "only PrometheusRules with these labels, "
	    "as the operator's ruleSelector (default: all)" },
	{ "--prometheus-rule-namespace-selector", "SELECTOR", "only PrometheusRules in "
	    "namespaces with these labels, as ruleNamespaceSelector (default: all)" },
	{ "--alertmanager-url", "URL", "the Alertmanager (http://IP:PORT[/PATH]) whose alerts "
	    "and silences V6's API serves (v6 get alerts, v6 silence; default: none)" },
	{ "--alert-noise-control", "BOOL", "the webhook receiver holds back alerts of a "
	    "rollout that is aborting by analysis and folds flapping alerts (default true)" },
	{ "--alert-flap-window", "DURATION", "an alert that fires --alert-flap-threshold "
	    "times within this window is flapping (default 10m)" },
	{ "--alert-flap-threshold", "N", "firings in the window that make an alert flapping "
	    "(default 3)" },
	{ "--help", NULL, "show this help" },
};

static void
usage(FILE *f)
{
	fprintf(f, "Usage: v6 server [flags]\n\n"
	    "Runs the V6 control plane: the Kubernetes-style API server, the object\n"
	    "store (SQLite, in DIR/v6.db) and the controllers. Logs are JSON lines on\n"
	    "stderr (--log-format text for plain lines). Stop it with SIGTERM or\n"
	    "Ctrl-C; workloads are not affected.\n\nFlags:\n");
	flags_usage(f, server_flags, ARRAY_SIZE(server_flags), 28);
	fprintf(f, "\nExample:\n  v6 server --data-dir /tmp/v6 --listen 127.0.0.1:6443\n");
}

char *
server_default_data_dir(void)
{
	const char *env = getenv("V6_DATA_DIR");
	if (env && *env)
		return xstrdup(env);
	if (geteuid() == 0)
		return xstrdup("/var/lib/v6");
	const char *home = getenv("HOME");
	return xasprintf("%s/.local/share/v6", home ? home : ".");
}

/* "127.0.0.1:6443", "[::1]:6443", ":6443". */
static int
parse_listen(const char *s, char **host, int *port)
{
	const char *colon = strrchr(s, ':');
	if (!colon)
		return -EINVAL;
	char *end;
	long p = strtol(colon + 1, &end, 10);
	if (*end || colon[1] == '\0' || p < 0 || p > 65535)
		return -EINVAL;
	const char *h = s;
	size_t hl = (size_t)(colon - s);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	*host = hl ? xstrndup(h, hl) : xstrdup("0.0.0.0");
	*port = (int)p;
	return 0;
}

/* The pod network's defaults and its rule for the Service range: pods in
 * their own network namespace cannot reach loopback addresses, so with
 * --pod-network cni cluster IPs come from a routable range (default
 * SERVER_ROUTABLE_SERVICE_CIDR) that node_cni.c holds on lo; without it
 * they stay on loopback as before. */
static int
pod_network_opts(struct server_opts *o)
{
	bool loopback = !o->service_cidr || strncmp(o->service_cidr, "127.", 4) == 0;
	if (!o->pod_network) {
		if (!loopback) {
			fprintf(stderr, "error: --service-cidr %s is not on loopback: that needs "
			    "--pod-network cni\n", o->service_cidr);
			return -EINVAL;
		}
		return 0;
	}
	if (!o->service_cidr) {
		o->service_cidr = xstrdup(SERVER_ROUTABLE_SERVICE_CIDR);
		api_alloc_set_cidr(o->service_cidr);
	} else if (loopback) {
		fprintf(stderr, "error: --service-cidr %s: pods in their own network namespace "
		    "cannot reach loopback addresses; give a routable range with --pod-network "
		    "cni\n", o->service_cidr);
		return -EINVAL;
	}
	if (!o->cni.bridge)
		o->cni.bridge = xstrdup(NCNI_DEFAULT_BRIDGE);
	if (!o->cni.cidr)
		o->cni.cidr = xstrdup(NCNI_DEFAULT_CIDR);
	o->cni.service_cidr = o->service_cidr;
	uint32_t base;
	unsigned prefix;
	if (!o->cluster_dns && util_ipv4_cidr(o->service_cidr, &base, &prefix) == 0) {
		base += 10;		/* kubeadm's: .10 of the Service range */
		o->cluster_dns = xasprintf("%u.%u.%u.%u", base >> 24, (base >> 16) & 255,
		    (base >> 8) & 255, base & 255);
	}
	return 0;
}

/* --prometheus-rules-dir, -url and the two selectors. */
static int
parse_rules_flag(const char *name, const char *val, struct promrules_config *c)
{
	static const struct {
		const char *flag;
		size_t off;
	} t[] = {
		{ "--prometheus-rules-dir", offsetof(struct promrules_config, dir) },
		{ "--prometheus-url", offsetof(struct promrules_config, url) },
		{ "--prometheus-rule-selector", offsetof(struct promrules_config, rule_selector) },
		{ "--prometheus-rule-namespace-selector",
		    offsetof(struct promrules_config, namespace_selector) },
	};
	for (size_t i = 0; i < ARRAY_SIZE(t); i++)
		if (strcmp(name, t[i].flag) == 0) {
			const char **slot = (const char **)((char *)c + t[i].off);
			free((char *)*slot);
			*slot = xstrdup(val);
			return 0;
		}
	fprintf(stderr, "error: unknown flag: %s\nSee 'v6 server --help' for usage.\n", name);
	return -EINVAL;
}

/* --alertmanager-url and the webhook receiver's noise control. */
static int
parse_alert_flag(const char *name, const char *val, struct alert_config *c)
{
	int64_t ms = 0;
	char *end = NULL;
	long n = 0;
	if (strcmp(name, "--alertmanager-url") == 0) {
		free((char *)c->alertmanager_url);
		c->alertmanager_url = xstrdup(val);
	} else if (strcmp(name, "--alert-noise-control") == 0 &&
	    (!strcmp(val, "true") || !strcmp(val, "false"))) {
		c->noise_control = !strcmp(val, "true");
	} else if (strcmp(name, "--alert-flap-window") == 0 && duration_parse(val, &ms) == 0 &&
	    ms > 0) {
		c->flap_window_ms = ms;
	} else if (strcmp(name, "--alert-flap-threshold") == 0 &&
	    (n = strtol(val, &end, 10)) >= 2 && !*end && n < 1000) {
		c->flap_threshold = (int)n;
	} else {
		fprintf(stderr, "error: %s: bad value \"%s\" (see 'v6 server --help')\n", name,
		    val);
		return -EINVAL;
	}
	return 0;
}

/* --loki-url and its tuning flags, from one table. */
static int
parse_loki_flag(const char *name, const char *val, struct obs_loki_config *c)
{
	static const struct {
		const char *name;
		bool duration;
		double min, max;
		size_t off;
		bool is_size;
	} tab[] = {
		{ "--loki-batch-size", false, 1024, 64 << 20,
		    offsetof(struct obs_loki_config, batch_bytes), true },
		{ "--loki-spool-size", false, 64 * 1024, 1e12,
		    offsetof(struct obs_loki_config, spool_bytes), true },
		{ "--loki-max-line-size", false, 1024, 16 << 20,
		    offsetof(struct obs_loki_config, max_line_bytes), true },
		{ "--loki-batch-wait", true, 10, 3600000,
		    offsetof(struct obs_loki_config, batch_wait_ms), false },
		{ "--loki-timeout", true, 100, 3600000,
		    offsetof(struct obs_loki_config, timeout_ms), false },
	};
	if (strcmp(name, "--loki-url") == 0) {
		if (!str_has_prefix(val, "http://")) {
			fprintf(stderr, "error: --loki-url: expected http://HOST:PORT[/PATH], got "
			    "\"%s\"\n", val);
			return -EINVAL;
		}
		c->url = val;
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(tab); i++) {
		if (strcmp(name, tab[i].name) != 0)
			continue;
		double v;
		int64_t ms;
		int rc = tab[i].duration ? duration_parse(val, &ms) : quantity_parse(val, &v);
		if (tab[i].duration)
			v = (double)ms;
		if (rc < 0 || v < tab[i].min || v > tab[i].max) {
			fprintf(stderr, "error: %s: expected a %s between %g and %g%s, got \"%s\"\n",
			    name, tab[i].duration ? "duration" : "size", tab[i].min, tab[i].max,
			    tab[i].duration ? " ms" : " bytes", val);
			return -EINVAL;
		}
		char *field = (char *)c + tab[i].off;
		if (tab[i].is_size)
			*(size_t *)field = (size_t)v;
		else
			*(int64_t *)field = (int64_t)v;
		return 0;
	}
	fprintf(stderr, "error: unknown flag: %s\nSee 'v6 server --help' for usage.\n", name);
	return -EINVAL;
}

static int
parse_opts(int argc, char **argv, struct server_opts *o)
{
	o->port = 6443;
	o->host = xstrdup("127.0.0.1");
	o->max_body = 3u << 20;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(0);
		}
		const char *val;
		char name[64];
		const struct flag_def *fl = flags_next(server_flags, ARRAY_SIZE(server_flags),
		    argc, argv, &i, name, sizeof name, &val);
		if (fl && fl->arg && !val) {
			fprintf(stderr, "error: flag needs an argument: %s\n", name);
			return -EINVAL;
		}
		if (strcmp(name, "--data-dir") == 0) {
			free(o->data_dir);
			o->data_dir = xstrdup(val);
		} else if (strcmp(name, "--audit-log-path") == 0) {
			free(o->audit_log);
			o->audit_log = xstrdup(val);
		} else if (strcmp(name, "--audit-policy-file") == 0) {
			free(o->audit_policy);
			o->audit_policy = xstrdup(val);
		} else if (strcmp(name, "--token-auth-file") == 0) {
			free(o->token_auth_file);
			o->token_auth_file = xstrdup(val);
		} else if (strcmp(name, "--encryption-provider-config") == 0) {
			free(o->encryption_config);
			o->encryption_config = xstrdup(val);
		} else if (strcmp(name, "--listen") == 0) {
			free(o->host);
			if (parse_listen(val, &o->host, &o->port) < 0) {
				fprintf(stderr, "error: --listen: expected ADDR:PORT, got \"%s\"\n", val);
				return -EINVAL;
			}
		} else if (strcmp(name, "--log-level") == 0) {
			enum log_level lvl;
			if (log_parse_level(val, &lvl) < 0) {
				fprintf(stderr, "error: --log-level: unknown level \"%s\"\n", val);
				return -EINVAL;
			}
			log_set_level(lvl);
		} else if (strcmp(name, "--log-format") == 0) {
			enum log_format lf;
			if (log_parse_format(val, &lf) < 0) {
				fprintf(stderr, "error: --log-format: expected json or text, got \"%s\"\n",
				    val);
				return -EINVAL;
			}
			log_set_format(lf);
		} else if (strcmp(name, "--journal-limit") == 0) {
			o->journal_limit = strtoll(val, NULL, 10);
		} else if (strcmp(name, "--journal-retention") == 0) {
			if (strcmp(val, "0") != 0 && (duration_parse(val, &o->journal_retention_ms) < 0 ||
			    o->journal_retention_ms < 1000)) {
				fprintf(stderr, "error: --journal-retention: expected 0 or a duration of "
				    "at least 1s, got \"%s\"\n", val);
				return -EINVAL;
			}
			if (strcmp(val, "0") == 0)
				o->journal_retention_ms = 0;
		} else if (strcmp(name, "--journal-min") == 0) {
			char *end;
			o->journal_min = strtoll(val, &end, 10);
			if (*end || end == val || o->journal_min < 0) {
				fprintf(stderr, "error: --journal-min: expected a count, got \"%s\"\n",
				    val);
				return -EINVAL;
			}
		} else if (strcmp(name, "--max-backoff") == 0) {
			int64_t ms;
			if (duration_parse(val, &ms) < 0 || ms < 1000 || ms > 86400000) {
				fprintf(stderr, "error: --max-backoff: expected a duration between 1s "
				    "and 24h, got \"%s\"\n", val);
				return -EINVAL;
			}
			o->max_backoff_s = (int)(ms / 1000);
		} else if (strcmp(name, "--controllers") == 0) {
			if (parse_controllers(val, &o->disabled) < 0) {
				char *known = part_names();
				fprintf(stderr, "error: --controllers: unknown part in \"%s\" (known: "
				    "%s)\n", val, known);
				free(known);
				return -EINVAL;
			}
		} else if (strcmp(name, "--traffic-period") == 0) {
			if (duration_parse(val, &o->traffic_period_ms) < 0 ||
			    o->traffic_period_ms < 200 || o->traffic_period_ms > 3600000) {
				fprintf(stderr, "error: --traffic-period: expected a duration between "
				    "200ms and 1h, got \"%s\"\n", val);
				return -EINVAL;
			}
		} else if (strcmp(name, "--container-log-max-size") == 0) {
			double b;
			if (quantity_parse(val, &b) < 0 || b < 4096 || b > 1e12) {
				fprintf(stderr, "error: --container-log-max-size: expected a size "
				    "between 4Ki and 1T, got \"%s\"\n", val);
				return -EINVAL;
			}
			o->log_max_bytes = (int64_t)b;
		} else if (strcmp(name, "--container-log-max-files") == 0) {
			char *end;
			long nf = strtol(val, &end, 10);
			if (*end || nf < 2 || nf > 64) {
				fprintf(stderr, "error: --container-log-max-files: expected 2..64, "
				    "got \"%s\"\n", val);
				return -EINVAL;
			}
			o->log_max_files = (int)nf;
		} else if (strcmp(name, "--image-gc-high-threshold") == 0 ||
		    strcmp(name, "--image-gc-low-threshold") == 0) {
			char *end;
			long v = strtol(val, &end, 10);
			if (*end || end == val || v < 0 || v > 100) {
				fprintf(stderr, "error: %s: expected a percentage 0..100, got "
				    "\"%s\"\n", name, val);
				return -EINVAL;
			}
			*(strstr(name, "high") ? &o->image_gc.high : &o->image_gc.low) = (int)v;
		} else if (strcmp(name, "--minimum-image-ttl-duration") == 0 ||
		    strcmp(name, "--image-gc-period") == 0) {
			bool ttl = strstr(name, "ttl") != NULL;
			int64_t *ms = ttl ? &o->image_gc.min_age_ms : &o->image_gc.period_ms;
			if (duration_parse(val, ms) < 0 || (!ttl && *ms < 100)) {
				fprintf(stderr, "error: %s: expected a duration, got \"%s\"\n", name,
				    val);
				return -EINVAL;
			}
		} else if (strcmp(name, "--registry-certs-dir") == 0) {
			o->registry_certs_dir = val;
		} else if (strcmp(name, "--insecure-registry") == 0) {
			o->insecure_registries = xrealloc(o->insecure_registries,
			    (o->ninsecure + 1) * sizeof(char *));
			o->insecure_registries[o->ninsecure++] = xstrdup(val);
		} else if (strcmp(name, "--node-name") == 0) {
			free(o->node_name);
			o->node_name = xstrdup(val);
		} else if (strcmp(name, "--hpa-sync-period") == 0) {
			if (duration_parse(val, &o->hpa_sync_ms) < 0 || o->hpa_sync_ms < 100) {
				fprintf(stderr, "error: --hpa-sync-period: expected a duration of at "
				    "least 100ms, got \"%s\"\n", val);
				return -EINVAL;
			}
		} else if (strcmp(name, "--vpa-recommender-interval") == 0 ||
		    strcmp(name, "--vpa-checkpoints-interval") == 0) {
			int64_t *ms = name[6] == 'r' ? &o->vpa_interval_ms : &o->vpa_checkpoint_ms;
			if (duration_parse(val, ms) < 0 || *ms < 100) {
				fprintf(stderr, "error: %s: expected a duration of at least 100ms, "
				    "got \"%s\"\n", name, val);
				return -EINVAL;
			}
		} else if (strcmp(name, "--app-resync-period") == 0) {
			if (duration_parse(val, &o->app_resync_ms) < 0 || o->app_resync_ms < 100) {
				fprintf(stderr, "error: --app-resync-period: expected a duration of "
				    "at least 100ms, got \"%s\"\n", val);
				return -EINVAL;
			}
		} else if (strcmp(name, "--event-ttl") == 0) {
			if (duration_parse(val, &o->event_ttl_ms) < 0 || o->event_ttl_ms < 1000) {
				fprintf(stderr, "error: --event-ttl: expected a duration of at least "
				    "1s, got \"%s\"\n", val);
				return -EINVAL;
			}
		} else if (strcmp(name, "--pod-network") == 0) {
			if (strcmp(val, "cni") != 0 && strcmp(val, "none") != 0) {
				fprintf(stderr, "error: --pod-network: expected none or cni, got "
				    "\"%s\"\n", val);
				return -EINVAL;
			}
			o->pod_network = strcmp(val, "cni") == 0;
		} else if (strcmp(name, "--bridge") == 0) {
			if (strlen(val) == 0 || strlen(val) > 15 || strpbrk(val, "/ \t")) {
				fprintf(stderr, "error: --bridge: expected an interface name of 1 to 15 "
				    "characters, got \"%s\"\n", val);
				return -EINVAL;
			}
			free((char *)o->cni.bridge);
			o->cni.bridge = xstrdup(val);
		} else if (strcmp(name, "--pod-network-cidr") == 0) {
			uint32_t base;
			unsigned prefix;
			if (util_ipv4_cidr(val, &base, &prefix) < 0 || base >> 24 == 127) {
				fprintf(stderr, "error: --pod-network-cidr: expected a range like "
				    "10.88.0.0/16 (/16 to /24, not loopback), got \"%s\"\n", val);
				return -EINVAL;
			}
			free((char *)o->cni.cidr);
			o->cni.cidr = xstrdup(val);
		} else if (strcmp(name, "--insecure-http") == 0) {
			o->insecure_http = true;
		} else if (strcmp(name, "--cert-lifetime") == 0) {
			if (duration_parse(val, &o->cert_lifetime_ms) < 0 ||
			    o->cert_lifetime_ms < 3000) {
				fprintf(stderr, "error: --cert-lifetime: expected a duration of at "
				    "least 3s, got \"%s\"\n", val);
				return -EINVAL;
			}
		} else if (strcmp(name, "--pod-network-masquerade") == 0) {
			o->cni.masquerade = true;
		} else if (strcmp(name, "--service-cidr") == 0) {
			uint32_t base;
			unsigned prefix;
			if (util_ipv4_cidr(val, &base, &prefix) < 0 || api_alloc_set_cidr(val) < 0) {
				fprintf(stderr, "error: --service-cidr: expected a range like "
				    "127.5.0.0/16 inside 127.0.0.0/8 (not 127.0.0.0/16), or with "
				    "--pod-network cni a routable one like 10.96.0.0/16; /16 to /24, "
				    "got \"%s\"\n", val);
				return -EINVAL;
			}
			free(o->service_cidr);
			o->service_cidr = xstrdup(val);
		} else if (strcmp(name, "--pod-cidr") == 0) {
			if (nipam_set_cidr(val) < 0) {
				fprintf(stderr, "error: %s: expected a range like 127.5.0.0/16 inside "
				    "127.0.0.0/8 (not 127.0.0.0/16), /16 to /24, got \"%s\"\n", name, val);
				return -EINVAL;
			}
		} else if (strcmp(name, "--default-runtime") == 0) {
			if (strcmp(val, "runc") != 0 && strcmp(val, "process") != 0) {
				fprintf(stderr, "error: --default-runtime: expected runc or process, "
				    "got \"%s\"\n", val);
				return -EINVAL;
			}
			o->default_runtime = strcmp(val, "runc") == 0 ? "runc" : "process";
		} else if (strcmp(name, "--otlp-endpoint") == 0) {
			free(o->otlp_endpoint);
			o->otlp_endpoint = xstrdup(val);
		} else if (strcmp(name, "--trace-sample-ratio") == 0) {
			double r;
			if (otlp_ratio_parse(val, &r) < 0) {
				fprintf(stderr, "error: --trace-sample-ratio: expected a number from 0 "
				    "to 1, got \"%s\"\n", val);
				return -EINVAL;
			}
			free(o->sample_ratio);
			o->sample_ratio = xstrdup(val);
		} else if (strcmp(name, "--cluster-dns") == 0) {
			free(o->cluster_dns);
			o->cluster_dns = xstrdup(val);
		} else if (strcmp(name, "--dns-upstream") == 0) {
			free(o->dns_upstream);
			o->dns_upstream = xstrdup(val);
		} else if (str_has_prefix(name, "--prometheus-")) {
			if (parse_rules_flag(name, val, &o->rules) < 0)
				return -EINVAL;
		} else if (str_has_prefix(name, "--alert")) {
			if (parse_alert_flag(name, val, &o->alerts) < 0)
				return -EINVAL;
		} else if (str_has_prefix(name, "--loki-")) {
			if (parse_loki_flag(name, val, &o->loki) < 0)
				return -EINVAL;
		} else if (strcmp(name, "--max-body-bytes") == 0) {
			o->max_body = (size_t)strtoull(val, NULL, 10);
		} else {
			fprintf(stderr, "error: unknown flag: %s\nSee 'v6 server --help' for usage.\n",
			    name);
			return -EINVAL;
		}
	}
	if (o->image_gc.low > o->image_gc.high) {
		fprintf(stderr, "error: --image-gc-low-threshold (%d) must not exceed "
		    "--image-gc-high-threshold (%d)\n", o->image_gc.low, o->image_gc.high);
		return -EINVAL;
	}
	if (!o->data_dir)
		o->data_dir = server_default_data_dir();
	if (o->insecure_http && !util_host_is_loopback(o->host)) {
		fprintf(stderr, "error: --insecure-http serves the API without TLS or client "
		    "certificates: only on a loopback --listen address (127.0.0.1, [::1]), not "
		    "%s\n", o->host);
		return -EINVAL;
	}
	return pod_network_opts(o);
}

/* The cluster-scoped objects every V6 has: the namespaces every cluster
 * has, and the RuntimeClasses of V6's two runtimes (handler = name). */
static int
ensure_objects(struct api *api)
{
	static const struct { const char *api_version, *kind, *name; } objs[] = {
		{ "v1", "Namespace", "default" }, { "v1", "Namespace", "kube-system" },
		{ "v1", "Namespace", "kube-public" },
		{ "node.k8s.io/v1", "RuntimeClass", "runc" },
		{ "node.k8s.io/v1", "RuntimeClass", "process" },
	};
	char key[128];
	for (size_t i = 0; i < ARRAY_SIZE(objs); i++) {
		const struct kind *k = kind_find_gvk(objs[i].api_version, objs[i].kind);
		json_t *o = NULL;
		if (store_get(api_store(api), api_res_key(k, key, sizeof key), "", objs[i].name,
		    &o) == 0) {
			json_decref(o);
			continue;
		}
		struct api_error err = { 0 };
		o = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", objs[i].api_version, "kind",
		    objs[i].kind, "metadata", "name", objs[i].name);
		if (strcmp(objs[i].kind, "RuntimeClass") == 0)
			json_object_set_new(o, "handler", json_string(objs[i].name));
		int rc = api_create(api, k, "", o, 0, NULL, &err);
		if (rc < 0)
			log_error("server", "creating %s %s: %s", objs[i].kind, objs[i].name,
			    err.message);
		api_error_clear(&err);
		if (rc < 0)
			return -EIO;
	}
	api_flush(api);
	return 0;
}

/* --default-runtime, or runc where V6 can use it (root, runc present):
 * decided once, logged. */
static void
pick_default_runtime(const struct server_opts *o)
{
	const char *why = "--default-runtime";
	npod_default_runtime = o->default_runtime;
	if (!npod_default_runtime) {
		char *path = proc_which("runc");
		bool root = geteuid() == 0, runc = path != NULL;
		free(path);
		npod_default_runtime = root && runc ? "runc" : "process";
		why = root && runc ? "root and runc on PATH" : !root ? "not root" :
		    "runc not on PATH";
	}
	log_info("server", "default runtime for pods without runtimeClassName: %s (%s)",
	    npod_default_runtime, why);
}

/* Stops the parts in the reverse order of their start; containers keep
 * running, to be adopted by the next server. */
static void
server_stop_parts(struct server *s)
{
	mem_trim_stop(s->trim);
	s->trim = NULL;
	for (size_t i = ARRAY_SIZE(parts); i-- > 0;) {
		if (s->disabled & (1u << i))
			continue;
		if (parts[i].ctrl)
			ctrl_stop(s->ctrls[i]);
		else
			parts[i].stop(s);
		s->ctrls[i] = NULL;
	}
	s->disabled = ~0u;	/* all stopped: a second call does nothing */
	pki_renew_stop(s->pki);
	s->pki = NULL;
	if (s->api)
		api_stop(s->api);
	s->api = NULL;
}

static int
server_start_parts(struct server *s, const struct server_opts *o)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return -errno;
	exe[n] = '\0';
	s->exe = xstrdup(exe);
	s->node_state = xasprintf("%s/node", o->data_dir);
	char *rules = o->rules.dir ? NULL : xasprintf("%s/prometheus-rules", o->data_dir);
	char *pki = o->insecure_http ? NULL : xasprintf("%s/" PKI_DIR, o->data_dir);
	struct addon_config ac = { .api = s->api, .host = o->host, .exe = s->exe,
		.rules_dir = o->rules.dir ? o->rules.dir : rules, .pki_dir = pki };
	addon_start(&ac);
	free(rules);
	free(pki);
	s->proxy_state = xasprintf("%s/proxy", o->data_dir);
	BUG_ON(ARRAY_SIZE(parts) > ARRAY_SIZE(s->ctrls));
	/* A part counts as on from its start: a failed start stops the ones
	 * started (its own stop copes with what it half made). */
	s->disabled = ~0u;
	pick_default_runtime(o);
	int rc = ensure_objects(s->api);
	if (rc == 0 && o->pod_network)		/* before DNS and the proxy bind there */
		rc = ncni_hold_services(s->node_state, o->service_cidr);
	for (size_t i = 0; i < ARRAY_SIZE(parts) && rc == 0; i++) {
		if (o->disabled & (1u << i))
			continue;
		s->disabled &= ~(1u << i);
		rc = parts[i].ctrl ? parts[i].ctrl(s->api, &s->ctrls[i]) : parts[i].start(s, o);
	}
	if (rc == 0)
		rc = mem_trim_start(s->loop, s->st, &s->trim);
	return rc;
}

/* ---- the data directory is private to V6 -------------------------------- */

static int private_fixed;	/* data_dir_private's count, for its log line */

/* Entries that keep the modes their pod gave them, for containers that may
 * run as any user: volumes (emptyDir is 0777, as the kubelet makes it), the
 * pod's resolv.conf, its working dir node/pods/UID (the logs' dirs there
 * are NS_NAME_UID), the image store's unpacked layers and a runc
 * container's overlay (upper, work, bundle/rootfs: root file systems keep
 * their files' modes), and the rule files Prometheus reads.
 * The 0700 tree above keeps them from others. */
static bool
private_exempt(const char *path, int type, const struct FTW *ftw)
{
	static const char *const names[] = { "volumes", "workdir", "resolv.conf", "layers",
		"prometheus-rules", "upper", "work", "rootfs" };
	const char *base = path + ftw->base;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcmp(base, names[i]) == 0)
			return true;
	return type == FTW_D && ftw->base >= 11 && !strchr(base, '_') &&
	    strncmp(path + ftw->base - 11, "/node/pods/", 11) == 0;
}

static int
private_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	if (private_exempt(path, type, ftw))
		return FTW_SKIP_SUBTREE;
	if ((type != FTW_F && type != FTW_D) || (st->st_mode & 077) == 0)
		return FTW_CONTINUE;	/* symlinks, sockets, already private */
	if (chmod(path, st->st_mode & 07700) == 0)
		private_fixed++;
	else
		log_warn("server", "chmod go-rwx %s: %s", path, strerror(errno));
	return FTW_CONTINUE;
}

/* Files made before V6 ran with umask 077 (an older install) lose their
 * group and other bits, once at start; other file systems mounted below
 * (netns, bind mounts) are not entered. */
static void
data_dir_private(const char *dir)
{
	private_fixed = 0;
	nftw(dir, private_one, 16, FTW_PHYS | FTW_MOUNT | FTW_ACTIONRETVAL);
	if (private_fixed)
		log_info("server", "data directory %s: removed group and other access from "
		    "%d files", dir, private_fixed);
}

/* Loads --encryption-provider-config and brings the store to it. */
static int
crypt_start(const struct server_opts *o, struct server *s)
{
	char *msg;
	int rc = store_crypt_load(o->encryption_config, &s->crypt, &msg);
	if (rc < 0) {
		fprintf(stderr, "error: --encryption-provider-config %s: %s\n",
		    o->encryption_config, msg);
		free(msg);
		return rc;
	}
	if ((rc = store_set_crypt(s->st, s->crypt)) < 0)
		fprintf(stderr, "error: re-encrypting the store failed: %s\n", strerror(-rc));
	for (size_t i = 0; rc == 0 && store_crypt_resource(s->crypt, i); i++)
		log_info("server", "%s at rest: written with %s", store_crypt_resource(s->crypt, i),
		    store_crypt_writer(s->crypt, store_crypt_resource(s->crypt, i)));
	return rc;
}

/* DIR/server.address: "HOST:PORT" the API listens on, written once it
 * listens, so whoever started the server with --listen HOST:0 finds it. */
static void
write_address(const struct server_opts *o, int port)
{
	char *path = xasprintf("%s/server.address", o->data_dir);
	char line[300];
	int n = snprintf(line, sizeof line, "%s:%d\n", o->host, port);
	int rc = file_write_atomic(path, line, (size_t)n, false);
	if (rc < 0)
		log_warn("server", "writing %s: %s", path, strerror(-rc));
	free(path);
}

static void
on_signal(uv_signal_t *h, int signum)
{
	struct server *s = h->data;
	log_info("server", "received signal %d, shutting down", signum);
	uv_signal_stop(&s->sigterm);
	uv_signal_stop(&s->sigint);
	server_stop_parts(s);
	uv_close((uv_handle_t *)&s->sigterm, NULL);
	uv_close((uv_handle_t *)&s->sigint, NULL);
}

/* The server's exporter (rollout spans), when an endpoint is configured. */
static void
tracing_start(struct server *s, const struct server_opts *o)
{
	struct otlp_config cfg = { .scope = "v6.rollouts" };
	s->otlp_url = otlp_endpoint_from(o->otlp_endpoint);
	cfg.endpoint = s->otlp_url;
	if (s->otlp_url && otlp_start(s->loop, &cfg, &s->otlp) == 0)
		log_info("server", "tracing: rollout spans to %s", s->otlp_url);
}

int
server_main(int argc, char **argv)
{
	struct server_opts o = { .journal_retention_ms = -1, .journal_min = -1,
		.image_gc = { .high = 85, .low = 80, .min_age_ms = 2 * 60 * 1000 },
		.alerts = { .noise_control = true } };
	struct server s = { .disabled = ~0u };	/* no part started yet */
	int rc = 1;
	if (parse_opts(argc, argv, &o) < 0)
		goto out;
	signal(SIGPIPE, SIG_IGN);
	umask(077);	/* everything under the data dir is V6's alone */
	s.loop = uv_default_loop();
	int err = store_open(o.data_dir, &s.st);
	if (err < 0) {
		fprintf(stderr, "error: cannot open the store in %s: %s\n", o.data_dir,
		    strerror(-err));
		goto out;
	}
	data_dir_private(o.data_dir);
	if (o.encryption_config && (err = crypt_start(&o, &s)) < 0)
		goto out_store;
	if (o.journal_limit > 0)
		store_set_journal_limit(s.st, o.journal_limit);
	store_set_journal_retention(s.st, o.journal_retention_ms, o.journal_min);
	if (o.audit_log) {
		char *msg;
		if (api_audit_open(o.audit_log, o.audit_policy, &s.audit, &msg) < 0) {
			fprintf(stderr, "error: --audit: %s\n", msg);
			free(msg);
			goto out_store;
		}
	}
	struct api_config ac = { .listen_host = o.host, .listen_port = o.port,
		.max_body_bytes = o.max_body, .event_ttl_ms = o.event_ttl_ms,
		.audit = s.audit };
	if (!o.insecure_http) {
		char *msg;
		if (pki_renew_init(o.data_dir, o.host, o.cert_lifetime_ms / 1000, &s.pki,
		    &ac.tls_ctx, &msg) < 0) {
			fprintf(stderr, "error: TLS: %s\n", msg);
			free(msg);
			goto out_store;
		}
	}
	err = api_start(s.loop, s.st, &ac, &s.api);
	if (err < 0) {
		fprintf(stderr, "error: cannot listen on %s:%d: %s\n", o.host, o.port,
		    uv_strerror(err));
		goto out_store;
	}
	char *ca_file = s.pki ? xasprintf("%s/" PKI_DIR "/ca.crt", o.data_dir) : NULL;
	struct auth_config auc = { .token_auth_file = o.token_auth_file,
		.data_dir = o.data_dir, .ca_file = ca_file };
	char *amsg;
	int arc = api_auth_start(s.api, &auc, &amsg);
	free(ca_file);
	if (arc < 0) {
		fprintf(stderr, "error: --token-auth-file: %s\n", amsg);
		free(amsg);
		goto out_store;
	}
	if (s.pki)
		pki_renew_start(s.pki, s.loop, s.api);
	tracing_start(&s, &o);
	struct obs_config oc = { .api = s.api, .node = &s.node, .feed = &s.feed,
		.data_dir = o.data_dir, .host = o.host };
	obs_pages_start(&oc);
	ui_register(s.api);
	err = server_start_parts(&s, &o);
	if (err < 0) {
		fprintf(stderr, "error: starting the controllers and the node agent failed: %s\n",
		    strerror(-err));
		goto out_api;
	}
	uv_signal_init(s.loop, &s.sigterm);
	uv_signal_init(s.loop, &s.sigint);
	s.sigterm.data = s.sigint.data = &s;
	uv_signal_start(&s.sigterm, on_signal, SIGTERM);
	uv_signal_start(&s.sigint, on_signal, SIGINT);
	log_info("server", "v6 %s serving on %s://%s:%d, data in %s, resourceVersion %lld",
	    V6_VERSION, s.pki ? "https" : "http", o.host, api_port(s.api), o.data_dir,
	    (long long)store_current_rv(s.st));
	write_address(&o, api_port(s.api));
	uv_run(s.loop, UV_RUN_DEFAULT);
	rc = 0;
	goto out_store;
out_api:
out_store:
	server_stop_parts(&s);
	otlp_stop_wait(s.otlp, s.loop, OTLP_SHUTDOWN_FLUSH_MS);
	uv_run(s.loop, UV_RUN_NOWAIT);
	store_close(s.st);
	store_crypt_free(s.crypt);
	api_audit_close(s.audit);
	uv_loop_close(s.loop);
out:
	free(s.node_state);
	free(s.proxy_state);
	free(s.exe);
	free(o.data_dir);
	free(o.encryption_config);
	free(o.audit_log);
	free(o.audit_policy);
	free(o.token_auth_file);
	free(o.host);
	free(o.node_name);
	for (size_t i = 0; i < o.ninsecure; i++)
		free(o.insecure_registries[i]);
	free(o.insecure_registries);
	free(o.otlp_endpoint);
	free(o.sample_ratio);
	free(s.otlp_url);
	free(o.cluster_dns);
	free(o.dns_upstream);
	free(o.service_cidr);
	free((char *)o.cni.bridge);
	free((char *)o.cni.cidr);
	free((char *)o.rules.dir);
	free((char *)o.rules.url);
	free((char *)o.rules.rule_selector);
	free((char *)o.rules.namespace_selector);
	free((char *)o.alerts.alertmanager_url);
	return rc;
}
