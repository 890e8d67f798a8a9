/* obs_sd.c — Prometheus discovery over http_sd_config: the full target
 * list of V6's own pages (server, cAdvisor, node, proxy admin) and of every
 * running pod annotated prometheus.io/scrape: "true" (port, path and scheme
 * from prometheus.io/port, /path, /scheme), with __meta_v6_* labels for
 * relabelling. obs_sd_targets is a pure function of the pods; obs_sd_serve
 * answers GET /v6/sd/prometheus with it. */
#include "obs_metrics.h"

#include <stdio.h>
#include <string.h>

#include "api.h"
#include "http.h"
#include "obj.h"
#include "proxy.h"

static void
add_group(json_t *out, const char *target, json_t *labels)
{
	json_array_append_new(out, json_pack("{s:[s], s:o}", "targets", target, "labels",
	    labels));
}

static void
add_self(json_t *out, const char *self, const char *job, const char *path, bool https)
{
	add_group(out, self, json_pack("{s:s, s:s, s:s, s:s}", "job", job, "__metrics_path__",
	    path, "__meta_v6_component", job + strlen("v6-"), "__scheme__",
	    https ? "https" : "http"));
}

static const char *
label(const json_t *pod, const char *key)
{
	json_t *v = json_object_get(obj_labels(pod), key);
	return json_is_string(v) ? json_string_value(v) : "";
}

/* The container declaring port (or the first one) and, when want is 0, the
 * ports to scrape: every TCP containerPort, as Prometheus' annotation
 * recipe for Kubernetes pods does. */
static const char *
port_owner(const json_t *pod, long port)
{
	const json_t *cs = obj_get_path(pod, "spec.containers"), *c, *p;
	size_t i, j;
	json_array_foreach(cs, i, c)
		json_array_foreach(json_object_get(c, "ports"), j, p)
			if (obj_int_at(p, "containerPort", 0) == port)
				return obj_str(c, "name");
	return obj_str(json_array_get(cs, 0), "name");
}

static void
add_pod_target(json_t *out, const json_t *pod, const char *ip, long port)
{
	const char *path = obj_annotation(pod, "prometheus.io/path");
	const char *scheme = obj_annotation(pod, "prometheus.io/scheme");
	const char *rev = label(pod, "rollouts-pod-template-hash");
	const char *app = label(pod, "app.kubernetes.io/name");
	char target[80];

	if (!*rev)
		rev = label(pod, "pod-template-hash");
	if (!*app)
		app = label(pod, "app");
	snprintf(target, sizeof target, strchr(ip, ':') ? "[%s]:%ld" : "%s:%ld", ip, port);
	add_group(out, target, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
	    "__meta_v6_namespace", obj_namespace(pod), "__meta_v6_pod", obj_name(pod),
	    "__meta_v6_container", port_owner(pod, port), "__meta_v6_app", app,
	    "__meta_v6_revision", rev, "__meta_v6_node", obj_str_at(pod, "spec.nodeName"),
	    "__metrics_path__", path && *path ? path : "/metrics",
	    "__scheme__", scheme && *scheme ? scheme : "http"));
}

static void
add_pod(json_t *out, const json_t *pod)
{
	const char *scrape = obj_annotation(pod, "prometheus.io/scrape");
	const char *port_s = obj_annotation(pod, "prometheus.io/port");
	const char *ip = obj_str_at(pod, "status.podIP");
	const json_t *cs = obj_get_path(pod, "spec.containers"), *c, *p;
	size_t i, j;
	char *end;

	if (!scrape || strcmp(scrape, "true") != 0 || !*ip ||
	    strcmp(obj_str_at(pod, "status.phase"), "Running") != 0 || obj_is_deleting(pod))
		return;
	if (port_s && *port_s) {
		long port = strtol(port_s, &end, 10);
		if (*end == '\0' && port > 0 && port < 65536)
			add_pod_target(out, pod, ip, port);
		return;
	}
	json_array_foreach(cs, i, c)
		json_array_foreach(json_object_get(c, "ports"), j, p) {
			const char *proto = obj_str(p, "protocol");
			if (!*proto || strcmp(proto, "TCP") == 0)
				add_pod_target(out, pod, ip, (long)obj_int_at(p, "containerPort", 0));
		}
}

json_t *
obs_sd_targets(const json_t *pods, const char *self, bool self_https,
    const char *proxy_admin)
{
	json_t *out = json_array();
	const json_t *pod;
	size_t i;

	add_self(out, self, "v6-server", "/metrics", self_https);
	add_self(out, self, "v6-cadvisor", "/metrics/cadvisor", self_https);
	add_self(out, self, "v6-node", "/metrics/node", self_https);
	if (proxy_admin && *proxy_admin)
		add_self(out, proxy_admin, "v6-proxy", "/metrics", false);
	json_array_foreach(pods, i, pod)
		add_pod(out, pod);
	return out;
}

void
obs_sd_serve(const struct obs_config *cfg, struct http_req *req)
{
	json_t *pods = NULL, *out;
	char self[300];
	const char *host = cfg->host && *cfg->host && strcmp(cfg->host, "0.0.0.0") != 0 ?
	    cfg->host : "127.0.0.1";

	if (strcmp(host, "::") == 0)
		host = "::1";
	snprintf(self, sizeof self, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host,
	    api_port(cfg->api));
	if (store_list(api_store(cfg->api), "pods", NULL, &pods, NULL) < 0)
		pods = json_array();
	out = obs_sd_targets(pods, self, req->tls,
	    *cfg->feed ? proxy_feed_admin_address(*cfg->feed) : NULL);
	char *body = json_dumps(out, JSON_COMPACT);
	http_respond(req, 200, "application/json", body, strlen(body));
	free(body);
	json_decref(out);
	json_decref(pods);
}
