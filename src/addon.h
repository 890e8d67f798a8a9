/* addon.h — `v6 addon`: components V6 runs as its own workloads (addon.c). */
#ifndef V6_ADDON_H
#define V6_ADDON_H

#include <jansson.h>

#define ADDON_NAMESPACE	"v6-system"

struct api;
struct addon_config {
	struct api *api;
	const char *host;	/* the API's listen host ("0.0.0.0": 127.0.0.1) */
	const char *exe;	/* the server's binary (the rule pack is found next to it) */
	const char *rules_dir;	/* where PrometheusRules are written (promrules) */
	const char *pki_dir;	/* DATA/pki when the API is HTTPS; NULL: plain HTTP */
};
/* Serves /v6/addons and /v6/addons/observability on cfg->api (copied). */
void addon_start(const struct addon_config *cfg);

/* The objects of the observability addon, pure (unit-tested). */
struct addon_env {
	const char *server_url;		/* http://127.0.0.1:6443: the discovery endpoint's */
	const char *pki_dir;		/* HTTPS: Prometheus trusts its ca.crt and presents
					 * admin.crt; NULL: plain HTTP */
	const char *alertmanager;	/* CLUSTERIP:9093 */
	const char *rules_dir;
	const char *prometheus_bin, *alertmanager_bin;
	json_t *rules;			/* the default pack's PrometheusRules (borrowed) */
};
json_t *addon_services(void);
json_t *addon_objects(const struct addon_env *env);
char *addon_prometheus_yml(const struct addon_env *env);
char *addon_alertmanager_yml(const struct addon_env *env);

#endif
