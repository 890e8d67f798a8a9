/* addon.c — `v6 addon enable observability`: Debian's Prometheus and
 * Alertmanager run as V6 workloads in the namespace v6-system (process
 * runtime: the host's binaries; a PersistentVolumeClaim each for their
 * data; readiness probes; generated configs in ConfigMaps), Prometheus
 * scraping what V6's discovery lists (/v6/sd/prometheus) and loading the
 * PrometheusRules V6 writes (the rules directory, read-only), V6's default
 * rule pack as a PrometheusRule of the namespace, alerts to the
 * Alertmanager. The server applies the objects (it knows its address, its
 * data directory and the Services' cluster IPs); ctrl_promrules.c finds the
 * addon's Prometheus when no --prometheus-url is given. Served as
 * /v6/addons (GET: state) and /v6/addons/observability (POST: enable or
 * update, DELETE: disable; the claims stay unless ?purge=true; both take
 * ?dryRun=All: every write checked, nothing stored). */
#include "addon.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "http.h"
#include "log.h"
#include "obj.h"
#include "util.h"

#define ADDON_LABEL	"addon.v6.dev/name"

static struct addon_config cfg;

/* ---- the objects (pure) ---------------------------------------------------- */

static json_t *
meta(const char *name, const char *app)
{
	return json_pack("{s:s, s:s, s:{s:s, s:s}}", "name", name, "namespace", ADDON_NAMESPACE,
	    "labels", ADDON_LABEL, "observability", "app.kubernetes.io/name", app);
}

static json_t *
service(const char *name, int port)
{
	return json_pack("{s:s, s:s, s:o, s:{s:{s:s}, s:[{s:s, s:i, s:s}]}}", "apiVersion", "v1",
	    "kind", "Service", "metadata", meta(name, name), "spec", "selector",
	    "app.kubernetes.io/name", name, "ports", "name", "http", "port", port, "targetPort",
	    "http");
}

static json_t *
claim(const char *name, const char *size)
{
	return json_pack("{s:s, s:s, s:o, s:{s:[s], s:{s:{s:s}}}}", "apiVersion", "v1", "kind",
	    "PersistentVolumeClaim", "metadata", meta(name, name), "spec", "accessModes",
	    "ReadWriteOnce", "resources", "requests", "storage", size);
}

static json_t *
config_map(const char *name, const char *app, const char *file, const char *text)
{
	return json_pack("{s:s, s:s, s:o, s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
	    "metadata", meta(name, app), "data", file, text);
}

/* A Deployment of one process pod running bin with args, listening on
 * $(POD_IP):port, its config (ConfigMap cm at conf_dir) and data (claim at
 * data_dir), plus extra volumes / mounts. Recreate: the claim is RWO. */
static json_t *
deployment(const char *name, const char *bin, json_t *args, int port, const char *ready,
    const char *cm, const char *conf_dir, const char *data_dir, json_t *vols, json_t *mounts)
{
	json_t *cmd = json_pack("[s]", bin);
	json_array_extend(cmd, args);
	json_decref(args);
	json_array_insert_new(vols, 0, json_pack("{s:s, s:{s:s}}", "name", "config",
	    "configMap", "name", cm));
	json_array_insert_new(vols, 1, json_pack("{s:s, s:{s:s}}", "name", "data",
	    "persistentVolumeClaim", "claimName", name));
	json_array_insert_new(mounts, 0, json_pack("{s:s, s:s}", "name", "config", "mountPath",
	    conf_dir));
	json_array_insert_new(mounts, 1, json_pack("{s:s, s:s}", "name", "data", "mountPath",
	    data_dir));
	json_t *ctr = json_pack("{s:s, s:s, s:o, s:[{s:s, s:i}], s:[{s:s, s:{s:{s:s}}}], "
	    "s:o, s:{s:{s:s, s:s}, s:i, s:i}, s:{s:{s:s, s:s}, s:i, s:i}, "
	    "s:{s:{s:s, s:s}}}", "name", name, "image", bin, "command", cmd, "ports", "name",
	    "http", "containerPort", port, "env", "name", "POD_IP", "valueFrom", "fieldRef",
	    "fieldPath", "status.podIP", "volumeMounts", mounts, "readinessProbe", "httpGet",
	    "path", ready, "port", "http", "periodSeconds", 5, "failureThreshold", 3,
	    "livenessProbe", "httpGet", "path", "/-/healthy", "port", "http", "periodSeconds",
	    10, "failureThreshold", 6, "resources", "requests", "cpu", "50m", "memory", "64Mi");
	return json_pack("{s:s, s:s, s:o, s:{s:i, s:{s:s}, s:{s:{s:s}}, s:{s:{s:o}, "
	    "s:{s:s, s:i, s:[o], s:o}}}}", "apiVersion", "apps/v1", "kind", "Deployment",
	    "metadata", meta(name, name), "spec", "replicas", 1, "strategy", "type", "Recreate",
	    "selector", "matchLabels", "app.kubernetes.io/name", name, "template", "metadata",
	    "labels", json_pack("{s:s, s:s}", "app.kubernetes.io/name", name, ADDON_LABEL,
	    "observability"), "spec", "runtimeClassName", "process",
	    "terminationGracePeriodSeconds", 30, "containers", ctr, "volumes", vols);
}

char *
addon_prometheus_yml(const struct addon_env *env)
{
	/* HTTPS API: the discovery request and V6's own pages (whose targets
	 * say __scheme__ https) trust V6's CA and present the admin certificate */
	char *tls = env->pki_dir ? xasprintf(
	    "        tls_config: {ca_file: %s/ca.crt, cert_file: %s/admin.crt, "
	    "key_file: %s/admin.key}\n"
	    "    tls_config: {ca_file: %s/ca.crt, cert_file: %s/admin.crt, "
	    "key_file: %s/admin.key}\n", env->pki_dir, env->pki_dir, env->pki_dir,
	    env->pki_dir, env->pki_dir, env->pki_dir) : NULL;
	char *out = xasprintf(
	    "# Generated by `v6 addon enable observability`: re-running it rewrites this.\n"
	    "global:\n"
	    "  scrape_interval: 15s\n"
	    "  evaluation_interval: 15s\n"
	    "rule_files:\n"
	    "  - /etc/v6/rules/*.yaml\n"
	    "alerting:\n"
	    "  alertmanagers:\n"
	    "    - static_configs:\n"
	    "        - targets: ['%s']\n"
	    "scrape_configs:\n"
	    "  - job_name: v6\n"
	    "    http_sd_configs:\n"
	    "      - url: %s/v6/sd/prometheus\n%s"
	    "    relabel_configs:\n"
	    "      - {source_labels: [__meta_v6_namespace], regex: (.+), target_label: namespace}\n"
	    "      - {source_labels: [__meta_v6_pod], regex: (.+), target_label: pod}\n"
	    "      - {source_labels: [__meta_v6_container], regex: (.+), target_label: container}\n"
	    "      - {source_labels: [__meta_v6_app], regex: (.+), target_label: app}\n"
	    "      - {source_labels: [__meta_v6_revision], regex: (.+), target_label: revision}\n",
	    env->alertmanager, env->server_url, tls ? tls : "");
	free(tls);
	return out;
}

char *
addon_alertmanager_yml(const struct addon_env *env)
{
	/* The default receiver is V6's webhook (docs/alerting.md): it adds the
	 * probable cause and records what `v6 describe alert` shows; over
	 * HTTPS with V6's CA and the admin certificate, as Prometheus. */
	char *tls = env->pki_dir ? xasprintf(
	    "        http_config:\n"
	    "          tls_config: {ca_file: %s/ca.crt, cert_file: %s/admin.crt, "
	    "key_file: %s/admin.key}\n", env->pki_dir, env->pki_dir, env->pki_dir) : NULL;
	char *out = xasprintf(
	    "# Generated by `v6 addon enable observability`. Receivers (email, Slack,\n"
	    "# webhooks, V6's DingTalk / WeCom receivers) go here: edit this ConfigMap,\n"
	    "# the Alertmanager reloads it.\n"
	    "route:\n"
	    "  receiver: default\n"
	    "  group_by: [alertname, namespace]\n"
	    "  group_wait: 30s\n"
	    "  group_interval: 5m\n"
	    "  repeat_interval: 4h\n"
	    "receivers:\n"
	    "  - name: default\n"
	    "    webhook_configs:\n"
	    "      - url: %s/apis/alerts.v6.dev/v1alpha1/webhook\n"
	    "        send_resolved: true\n%s", env->server_url, tls ? tls : "");
	free(tls);
	return out;
}

/* The Services first: Prometheus' config names the Alertmanager's address. */
json_t *
addon_services(void)
{
	return json_pack("[o, o]", service("prometheus", 9090), service("alertmanager", 9093));
}

json_t *
addon_objects(const struct addon_env *env)
{
	json_t *out = json_array();
	char *prom = addon_prometheus_yml(env), *am = addon_alertmanager_yml(env);
	json_array_append_new(out, config_map("prometheus-config", "prometheus",
	    "prometheus.yml", prom));
	json_array_append_new(out, config_map("alertmanager-config", "alertmanager",
	    "alertmanager.yml", am));
	json_array_append_new(out, claim("prometheus", "2Gi"));
	json_array_append_new(out, claim("alertmanager", "256Mi"));
	json_array_append_new(out, deployment("prometheus", env->prometheus_bin, json_pack(
	    "[s, s, s, s, s]", "--config.file=/etc/prometheus/prometheus.yml",
	    "--storage.tsdb.path=/prometheus", "--storage.tsdb.retention.time=15d",
	    "--web.listen-address=$(POD_IP):9090", "--web.enable-lifecycle"), 9090, "/-/ready",
	    "prometheus-config", "/etc/prometheus", "/prometheus",
	    json_pack("[{s:s, s:{s:s, s:s}}]", "name", "rules", "hostPath", "path",
	    env->rules_dir, "type", "DirectoryOrCreate"),
	    json_pack("[{s:s, s:s, s:b}]", "name", "rules", "mountPath", "/etc/v6/rules",
	    "readOnly", 1)));
	json_array_append_new(out, deployment("alertmanager", env->alertmanager_bin, json_pack(
	    "[s, s, s, s]", "--config.file=/etc/alertmanager/alertmanager.yml",
	    "--storage.path=/alertmanager", "--web.listen-address=$(POD_IP):9093",
	    "--cluster.listen-address="), 9093, "/-/ready", "alertmanager-config",
	    "/etc/alertmanager", "/alertmanager", json_array(), json_array()));
	size_t i;
	json_t *r;
	json_array_foreach(env->rules, i, r) {	/* the pack's, in our namespace, labelled */
		json_t *c = json_deep_copy(r);
		json_t *m = obj_child(c, "metadata");
		json_object_set_new(m, "namespace", json_string(ADDON_NAMESPACE));
		json_object_set_new(obj_child(m, "labels"), ADDON_LABEL,
		    json_string("observability"));
		json_array_append_new(out, c);
	}
	free(prom);
	free(am);
	return out;
}

/* ---- applying them ---------------------------------------------------------- */

static bool
namespace_exists(void)
{
	json_t *o = NULL;
	bool there = store_get(api_store(cfg.api), "namespaces", "", ADDON_NAMESPACE, &o) == 0;
	json_decref(o);
	return there;
}

/* Creates obj, or replaces the stored one's spec/data (obj consumed);
 * flags API_DRY_RUN checks the write and stores nothing. Returns 0 or -1
 * with *err. */
static int
apply_one(json_t *obj, unsigned flags, json_t **stored, char **err)
{
	const struct kind *k = kind_find_gvk(obj_str(obj, "apiVersion"), obj_str(obj, "kind"));
	const char *ns = k && k->namespaced ? ADDON_NAMESPACE : "";
	struct api_error e = { 0 };
	json_t *cur = NULL;
	int rc = -1;
	if (!k) {
		*err = xasprintf("%s: unknown kind", obj_str(obj, "kind"));
		json_decref(obj);
		return -1;
	}
	if (api_get(cfg.api, k, ns, obj_name(obj), &cur, &e) == 0) {
		api_error_clear(&e);
		/* keep what the API set (clusterIP, volumeName, ...): merge ours in */
		json_t *m = json_deep_copy(cur);
		const char *key;
		json_t *v;
		json_object_foreach(obj, key, v)
			if (strcmp(key, "metadata") != 0 && strcmp(key, "status") != 0) {
				json_t *old = json_object_get(m, key);
				if (json_is_object(old) && json_is_object(v))
					json_object_update_recursive(old, v);
				else
					json_object_set(m, key, v);
			}
		json_object_update(obj_child(obj_child(m, "metadata"), "labels"), obj_labels(obj));
		json_decref(obj);
		rc = api_update(cfg.api, k, ns, m, false, flags, stored, &e);
	} else if ((flags & API_DRY_RUN) && ns[0] && !namespace_exists()) {
		/* the dry run's Namespace is not stored: what goes in it cannot
		 * be checked before it exists (as `v6 apply --dry-run=server`) */
		api_error_clear(&e);
		json_decref(obj);
		rc = 0;
	} else {
		api_error_clear(&e);
		rc = api_create(cfg.api, k, ns, obj, flags, stored, &e);
	}
	json_decref(cur);
	if (rc < 0)
		*err = xstrdup(e.message ? e.message : "write failed");
	api_error_clear(&e);
	return rc < 0 ? -1 : 0;
}

/* The default rule pack (contrib/prometheus/v6-rules.yaml): its
 * PrometheusRule objects, from $V6_RULES_PACK, else next to the binary's
 * tree, else /usr/share/v6. */
static json_t *
rule_pack(void)
{
	char *dir = xstrdup(cfg.exe ? cfg.exe : ""), *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	char *paths[] = { getenv("V6_RULES_PACK") ? xstrdup(getenv("V6_RULES_PACK")) : NULL,
		xasprintf("%s/../contrib/prometheus/v6-rules.yaml", dir),
		xstrdup("/usr/share/v6/v6-rules.yaml") };
	json_t *groups = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
		char *text = NULL;
		size_t len;
		if (!groups && paths[i] && file_read_all(paths[i], &text, &len) == 0) {
			struct obj_docs docs = { 0 };
			struct errlist errs = { 0 };
			if (obj_parse(text, len, &docs, &errs) == 0) {
				groups = json_array();
				for (size_t d = 0; d < docs.n; d++)
					if (!strcmp(obj_str(docs.v[d].obj, "kind"), "PrometheusRule"))
						json_array_append(groups, docs.v[d].obj);
			}
			obj_docs_free(&docs);
			errlist_free(&errs);
		}
		free(text);
		free(paths[i]);
	}
	free(dir);
	if (!groups)
		log_warn("addon", "the default rule pack (contrib/prometheus/v6-rules.yaml) was not "
		    "found: set V6_RULES_PACK; the addon goes on without it");
	return groups;
}

static bool
have_binary(const char *path)
{
	return access(path, X_OK) == 0;
}

static void
enable(struct http_req *req, unsigned flags)
{
	static const char *const bins[][2] = {
		{ "/usr/bin/prometheus", "prometheus" },
		{ "/usr/bin/prometheus-alertmanager", "prometheus-alertmanager" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bins); i++)
		if (!have_binary(bins[i][0])) {
			char *m = xasprintf("%s is not installed on the server's machine: "
			    "apt-get install -y %s", bins[i][0], bins[i][1]);
			api_respond_status(req, 422, m);
			free(m);
			return;
		}
	json_t *applied = json_array(), *stored = NULL;
	char *err = NULL;
	json_t *ns = json_pack("{s:s, s:s, s:{s:s, s:{s:s}}}", "apiVersion", "v1", "kind",
	    "Namespace", "metadata", "name", ADDON_NAMESPACE, "labels", ADDON_LABEL,
	    "observability");
	int rc = apply_one(ns, flags, NULL, &err);
	if (rc == 0)
		json_array_append_new(applied, json_string("namespace/" ADDON_NAMESPACE));
	json_t *svcs = addon_services(), *o;
	char am[80] = "";
	size_t i;
	json_array_foreach(svcs, i, o) {
		if (rc < 0)
			break;
		char *name = xstrdup(obj_name(o));
		rc = apply_one(json_incref(o), flags, &stored, &err);
		if (rc == 0 && !strcmp(name, "alertmanager"))
			snprintf(am, sizeof am, "%s:9093", obj_str_at(stored, "spec.clusterIP"));
		if (rc == 0) {
			char *id = xasprintf("service/%s", name);
			json_array_append_new(applied, json_string(id));
			free(id);
		}
		json_decref(stored);
		stored = NULL;
		free(name);
	}
	json_decref(svcs);
	const char *host = cfg.host && *cfg.host && strcmp(cfg.host, "0.0.0.0") &&
	    strcmp(cfg.host, "::") ? cfg.host : "127.0.0.1";
	char *server = xasprintf(strchr(host, ':') ? "%s://[%s]:%d" : "%s://%s:%d",
	    cfg.pki_dir ? "https" : "http", host, api_port(cfg.api));
	struct addon_env env = { .server_url = server, .pki_dir = cfg.pki_dir, .alertmanager = am,
		.rules_dir = cfg.rules_dir, .prometheus_bin = bins[0][0],
		.alertmanager_bin = bins[1][0], .rules = rc == 0 ? rule_pack() : NULL };
	json_t *objs = rc == 0 ? addon_objects(&env) : json_array();
	json_array_foreach(objs, i, o) {
		if (rc < 0)
			break;
		char *id = xasprintf("%s/%s", obj_str(o, "kind"), obj_name(o));
		for (char *p = id; *p && *p != '/'; p++)
			*p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
		rc = apply_one(json_incref(o), flags, NULL, &err);
		if (rc == 0)
			json_array_append_new(applied, json_string(id));
		free(id);
	}
	json_decref(objs);
	json_decref(env.rules);
	free(server);
	api_flush(cfg.api);
	if (rc < 0) {
		char *m = xasprintf("enabling observability: %s", err);
		api_respond_status(req, 422, m);
		free(m);
		json_decref(applied);
	} else {
		if (!(flags & API_DRY_RUN))
			log_info("addon", "observability enabled in namespace %s", ADDON_NAMESPACE);
		api_respond_json(req, 200, json_pack("{s:s, s:s, s:o, s:b}", "name",
		    "observability", "namespace", ADDON_NAMESPACE, "applied", applied, "dryRun",
		    (flags & API_DRY_RUN) != 0));
	}
	free(err);
}

static void
disable(struct http_req *req, unsigned flags)
{
	static const char *const kinds[][2] = {
		{ "monitoring.coreos.com/v1", "PrometheusRule" }, { "apps/v1", "Deployment" },
		{ "v1", "Service" }, { "v1", "ConfigMap" }, { "v1", "PersistentVolumeClaim" },
	};
	char *purge = http_query_get(req->query, "purge");
	bool all = purge && !strcmp(purge, "true");
	free(purge);
	json_t *deleted = json_array();
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		const struct kind *k = kind_find_gvk(kinds[i][0], kinds[i][1]);
		char key[128];
		json_t *items = NULL, *o;
		size_t j;
		if (!k || (!all && !strcmp(kinds[i][1], "PersistentVolumeClaim")) ||
		    store_list(api_store(cfg.api), api_res_key(k, key, sizeof key), ADDON_NAMESPACE,
		    &items, NULL) < 0)
			continue;
		json_array_foreach(items, j, o) {
			if (strcmp(json_string_value(json_object_get(obj_labels(o), ADDON_LABEL)) ?: "",
			    "observability") != 0)
				continue;
			struct api_error e = { 0 };
			if (api_delete(cfg.api, k, ADDON_NAMESPACE, obj_name(o), API_PROPAGATE_BACKGROUND,
			    NULL, 0, flags, NULL, &e) == 0) {
				char *id = xasprintf("%s/%s", k->plural, obj_name(o));
				json_array_append_new(deleted, json_string(id));
				free(id);
			}
			api_error_clear(&e);
		}
		json_decref(items);
	}
	api_flush(cfg.api);
	api_respond_json(req, 200, json_pack("{s:s, s:o, s:b, s:b}", "name", "observability",
	    "deleted", deleted, "kept_volumes", !all, "dryRun", (flags & API_DRY_RUN) != 0));
}

static void
serve_observability(void *arg, struct http_req *req)
{
	(void)arg;
	unsigned flags;
	if (api_dry_run_query(req, &flags) < 0)
		return;
	if (!strcmp(req->method, "POST"))
		enable(req, flags);
	else if (!strcmp(req->method, "DELETE"))
		disable(req, flags);
	else
		api_respond_status(req, 405, "POST enables the addon, DELETE disables it");
}

/* GET /v6/addons: each addon, whether it is enabled and its workloads'
 * readiness. */
static void
serve_list(void *arg, struct http_req *req)
{
	(void)arg;
	const struct kind *k = kind_find_gvk("apps/v1", "Deployment");
	json_t *items = NULL, *o, *workloads = json_array();
	size_t i;
	char key[64];
	store_list(api_store(cfg.api), api_res_key(k, key, sizeof key), ADDON_NAMESPACE, &items,
	    NULL);
	json_array_foreach(items, i, o)
		if (!strcmp(json_string_value(json_object_get(obj_labels(o), ADDON_LABEL)) ?: "",
		    "observability"))
			json_array_append_new(workloads, json_pack("{s:s, s:I, s:I}", "name",
			    obj_name(o), "replicas", (json_int_t)obj_int_at(o, "spec.replicas", 1),
			    "ready", (json_int_t)obj_int_at(o, "status.readyReplicas", 0)));
	json_decref(items);
	api_respond_json(req, 200, json_pack("{s:[{s:s, s:s, s:b, s:o, s:s}]}", "addons",
	    "name", "observability", "namespace", ADDON_NAMESPACE, "enabled",
	    json_array_size(workloads) > 0, "workloads", workloads, "description",
	    "Prometheus and Alertmanager (Debian's) as V6 workloads, scraping V6"));
}

void
addon_start(const struct addon_config *c)
{
	cfg = *c;	/* strings copied: the server's may be freed first */
	cfg.host = c->host ? xstrdup(c->host) : NULL;
	cfg.exe = c->exe ? xstrdup(c->exe) : NULL;
	cfg.rules_dir = xstrdup(c->rules_dir);
	cfg.pki_dir = c->pki_dir ? xstrdup(c->pki_dir) : NULL;
	api_register_path(cfg.api, "/v6/addons", serve_list, NULL);
	api_register_path(cfg.api, "/v6/addons/observability", serve_observability, NULL);
}
