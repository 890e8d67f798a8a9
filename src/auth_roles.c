/* auth_roles.c — Kubernetes' bootstrap ClusterRoles and bindings
 * (cluster-admin, admin / edit / view aggregated from system:aggregate-to-*,
 * system:discovery, system:public-info-viewer, system:basic-user,
 * system:monitoring), made or
 * brought up to date at start by api_auth_start(); and the controller that
 * writes aggregated ClusterRoles' rules. */
#include "auth.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctrl.h"
#include "log.h"
#include "util.h"

#define RBAC_GV "rbac.authorization.k8s.io/v1"
#define AGG "rbac.authorization.k8s.io/aggregate-to-"
#define READ "get list watch"
#define WRITE "create delete deletecollection patch update"

/* One PolicyRule: space-separated lists ("" group is written "core"). */
struct rule_row {
	const char *verbs, *groups, *resources, *urls;
};

static const struct rule_row cluster_admin[] = {
	{ "*", "*", "*", NULL }, { "*", NULL, NULL, "*" }, { NULL },
};

static const struct rule_row to_view[] = {
	{ READ, "core", "configmaps endpoints persistentvolumeclaims "
	  "persistentvolumeclaims/status pods pods/log pods/status services services/status "
	  "serviceaccounts events namespaces namespaces/status resourcequotas limitranges "
	  "replicationcontrollers replicationcontrollers/scale replicationcontrollers/status",
	  NULL },
	{ READ, "apps", "controllerrevisions daemonsets daemonsets/status deployments "
	  "deployments/scale deployments/status replicasets replicasets/scale "
	  "replicasets/status statefulsets statefulsets/scale statefulsets/status", NULL },
	{ READ, "autoscaling", "horizontalpodautoscalers horizontalpodautoscalers/status",
	  NULL },
	{ READ, "batch", "cronjobs cronjobs/status jobs jobs/status", NULL },
	{ READ, "argoproj.io", "rollouts rollouts/scale rollouts/status analysistemplates "
	  "clusteranalysistemplates analysisruns", NULL },
	{ READ, "gateway.networking.k8s.io", "gateways gateways/status httproutes "
	  "httproutes/status", NULL },
	{ READ, "monitoring.coreos.com", "prometheusrules", NULL },
	{ READ, "metrics.k8s.io", "pods nodes", NULL },
	{ NULL },
};

static const struct rule_row to_edit[] = {
	{ WRITE, "core", "pods pods/attach pods/exec pods/portforward pods/proxy pods/eviction "
	  "configmaps endpoints persistentvolumeclaims replicationcontrollers "
	  "replicationcontrollers/scale secrets serviceaccounts services services/proxy",
	  NULL },
	{ READ, "core", "pods/attach pods/exec pods/portforward pods/proxy secrets "
	  "services/proxy", NULL },
	{ "create", "core", "serviceaccounts/token", NULL },
	{ "impersonate", "core", "serviceaccounts", NULL },
	{ WRITE, "apps", "daemonsets deployments deployments/rollback deployments/scale "
	  "replicasets replicasets/scale statefulsets statefulsets/scale", NULL },
	{ WRITE, "autoscaling", "horizontalpodautoscalers", NULL },
	{ WRITE, "batch", "cronjobs jobs", NULL },
	{ WRITE, "argoproj.io", "rollouts rollouts/scale rollouts/status analysistemplates "
	  "analysisruns", NULL },
	{ WRITE, "gateway.networking.k8s.io", "gateways httproutes", NULL },
	{ WRITE, "monitoring.coreos.com", "prometheusrules", NULL },
	{ NULL },
};

static const struct rule_row to_admin[] = {
	{ WRITE " " READ, "rbac.authorization.k8s.io", "roles rolebindings", NULL },
	{ "create", "authorization.k8s.io", "localsubjectaccessreviews", NULL },
	{ NULL },
};

/* V6's alerts.v6.dev (alert_api.c), aggregated into view and edit by their
 * labels, as an add-on's roles are in Kubernetes: viewers read alerts and
 * silences, editors also create and expire silences. */
static const struct rule_row alerts_view[] = {
	{ READ, "alerts.v6.dev", "alerts silences", NULL },
	{ NULL },
};

static const struct rule_row alerts_edit[] = {
	{ "create delete", "alerts.v6.dev", "silences", NULL },
	{ NULL },
};

static const struct rule_row discovery[] = {
	{ "get", NULL, NULL, "/api /api/* /apis /apis/* /healthz /livez /openapi /openapi/* "
	  "/readyz /version /version/" },
	{ NULL },
};

static const struct rule_row public_info[] = {
	{ "get", NULL, NULL, "/healthz /livez /readyz /version /version/ /ui /ui/*" },
	{ NULL },
};

/* Kubernetes' system:monitoring, plus V6's own metrics pages and the
 * Prometheus http_sd list: bind a Prometheus ServiceAccount to it. */
static const struct rule_row monitoring[] = {
	{ "get", NULL, NULL, "/healthz /healthz/* /livez /livez/* /readyz /readyz/* /metrics "
	  "/metrics/* /v6/sd/*" },
	{ NULL },
};

static const struct rule_row basic_user[] = {
	{ "create", "authorization.k8s.io", "selfsubjectaccessreviews selfsubjectrulesreviews",
	  NULL },
	{ "create", "authentication.k8s.io", "selfsubjectreviews", NULL },
	{ NULL },
};

static const struct role_row {
	const char *name;
	const char *label;	/* AGG label it carries ("edit": aggregate-to-edit) */
	const char *aggregates;	/* AGG label it selects, NULL: plain rules */
	const struct rule_row *rules;
} roles[] = {
	{ "cluster-admin", NULL, NULL, cluster_admin },
	{ "admin", NULL, "admin", NULL },
	{ "edit", "admin", "edit", NULL },
	{ "view", "edit", "view", NULL },
	{ "system:aggregate-to-admin", "admin", NULL, to_admin },
	{ "system:aggregate-to-edit", "edit", NULL, to_edit },
	{ "system:aggregate-to-view", "view", NULL, to_view },
	{ "system:v6:aggregate-alerts-to-view", "view", NULL, alerts_view },
	{ "system:v6:aggregate-alerts-to-edit", "edit", NULL, alerts_edit },
	{ "system:discovery", NULL, NULL, discovery },
	{ "system:public-info-viewer", NULL, NULL, public_info },
	{ "system:basic-user", NULL, NULL, basic_user },
	{ "system:monitoring", NULL, NULL, monitoring },
};

static const struct binding_row {
	const char *name, *role;
	const char *groups;	/* space-separated Group subjects */
} bindings[] = {
	{ "cluster-admin", "cluster-admin", "system:masters" },
	{ "system:discovery", "system:discovery", "system:authenticated" },
	{ "system:basic-user", "system:basic-user", "system:authenticated" },
	{ "system:public-info-viewer", "system:public-info-viewer",
	  "system:authenticated system:unauthenticated" },
	{ "system:monitoring", "system:monitoring", "system:monitoring" },
};

/* "a b c" as a JSON array ("core" is the group ""). */
static json_t *
words(const char *s)
{
	json_t *a = json_array();
	while (s && *s) {
		size_t n = strcspn(s, " ");
		if (n) {
			char *w = xstrndup(s, n);
			json_array_append_new(a, json_string(strcmp(w, "core") ? w : ""));
			free(w);
		}
		s += n + (s[n] == ' ');
	}
	return a;
}

static json_t *
meta(const char *name, const char *label)
{
	json_t *labels = json_pack("{s:s}", "kubernetes.io/bootstrapping", "rbac-defaults");
	if (label) {
		char *k = xasprintf(AGG "%s", label);
		json_object_set_new(labels, k, json_string("true"));
		free(k);
	}
	return json_pack("{s:s, s:o, s:{s:s}}", "name", name, "labels", labels, "annotations",
	    "rbac.authorization.kubernetes.io/autoupdate", "true");
}

static json_t *
role_object(const struct role_row *r)
{
	json_t *o = json_pack("{s:s, s:s, s:o}", "apiVersion", RBAC_GV, "kind", "ClusterRole",
	    "metadata", meta(r->name, r->label));
	json_t *rules = json_array();
	for (const struct rule_row *x = r->rules; x && x->verbs; x++) {
		json_t *rule = json_pack("{s:o}", "verbs", words(x->verbs));
		if (x->groups)
			json_object_set_new(rule, "apiGroups", words(x->groups));
		if (x->resources)
			json_object_set_new(rule, "resources", words(x->resources));
		if (x->urls)
			json_object_set_new(rule, "nonResourceURLs", words(x->urls));
		json_array_append_new(rules, rule);
	}
	if (r->aggregates) {
		char *k = xasprintf(AGG "%s", r->aggregates);
		json_object_set_new(o, "aggregationRule", json_pack("{s:[{s:{s:s}}]}",
		    "clusterRoleSelectors", "matchLabels", k, "true"));
		free(k);
	}
	json_object_set_new(o, "rules", rules);
	return o;
}

static json_t *
binding_object(const struct binding_row *b)
{
	json_t *subjects = json_array(), *g = words(b->groups), *v;
	size_t i;
	json_array_foreach(g, i, v)
		json_array_append_new(subjects, json_pack("{s:s, s:s, s:O}", "kind", "Group",
		    "apiGroup", "rbac.authorization.k8s.io", "name", v));
	json_decref(g);
	return json_pack("{s:s, s:s, s:o, s:o, s:{s:s, s:s, s:s}}", "apiVersion", RBAC_GV,
	    "kind", "ClusterRoleBinding", "metadata", meta(b->name, NULL), "subjects", subjects,
	    "roleRef", "apiGroup", "rbac.authorization.k8s.io", "kind", "ClusterRole", "name",
	    b->role);
}

/* Creates want, or updates the stored one whose fields (other than
 * metadata) differ, unless it opted out of auto-update. Takes want. */
static int
ensure(struct api *api, json_t *want)
{
	const struct kind *k = kind_find_gvk(RBAC_GV, json_string_value(json_object_get(want,
	    "kind")));
	const char *name = json_string_value(json_object_get(json_object_get(want, "metadata"),
	    "name"));
	struct api_error err = { 0 };
	json_t *have = NULL;
	char key[128];
	int rc = 0;

	if (store_get(api_store(api), api_res_key(k, key, sizeof key), "", name, &have) < 0) {
		rc = api_create(api, k, "", json_incref(want), 0, NULL, &err);
		goto out;
	}
	const json_t *hm = json_object_get(have, "metadata");
	const char *au = json_string_value(json_object_get(json_object_get(hm, "annotations"),
	    "rbac.authorization.kubernetes.io/autoupdate"));
	bool same = true;
	const char *f;
	json_t *v;
	bool aggregated = json_object_get(want, "aggregationRule") != NULL;
	json_object_foreach(want, f, v)
		if (strcmp(f, "metadata") != 0 && !(aggregated && strcmp(f, "rules") == 0) &&
		    !json_equal(v, json_object_get(have, f)))
			same = false;	/* an aggregated role's rules are the controller's */
	if (aggregated)
		json_object_set(want, "rules", json_object_get(have, "rules"));
	if (same || (au && strcmp(au, "false") == 0))
		goto out;
	json_object_set(json_object_get(want, "metadata"), "resourceVersion",
	    json_object_get(hm, "resourceVersion"));
	rc = api_update(api, k, "", json_incref(want), false, 0, NULL, &err);
out:
	if (rc < 0)
		log_error("auth", "default %s %s: %s", k->kind, name, err.message);
	api_error_clear(&err);
	json_decref(have);
	json_decref(want);
	return rc < 0 ? -EIO : 0;
}

int
auth_roles_ensure(struct api *api)
{
	int rc = 0;
	for (size_t i = 0; i < ARRAY_SIZE(roles) && rc == 0; i++)
		rc = ensure(api, role_object(&roles[i]));
	for (size_t i = 0; i < ARRAY_SIZE(bindings) && rc == 0; i++)
		rc = ensure(api, binding_object(&bindings[i]));
	api_flush(api);
	return rc;
}

/* ---- aggregation ------------------------------------------------------------ */

#define CLUSTERROLES "rbac.authorization.k8s.io/clusterroles"

/* Any ClusterRole's change may change what any aggregated one selects. */
static void
agg_map(struct ctrl *c, enum store_event ev, const json_t *obj)
{
	(void)ev;
	if (json_object_get(obj, "aggregationRule"))
		ctrl_enqueue(c, "", json_string_value(obj_get_path(obj, "metadata.name")));
	else
		ctrl_enqueue_all(c);
}

static int
agg_decide(struct ctrl *c, const json_t *cr, int64_t now_ms, struct ctrl_writes *out)
{
	json_t *all = NULL, *rules;
	(void)now_ms;
	if (!json_object_get(cr, "aggregationRule"))
		return 0;
	if (store_list(ctrl_store(c), CLUSTERROLES, NULL, &all, NULL) < 0)
		return -EIO;
	rules = rbac_clusterrole_rules(all, cr);
	if (!json_equal(rules, json_object_get(cr, "rules"))) {
		json_t *upd = json_deep_copy(cr);
		json_object_set(upd, "rules", rules);
		ctrl_writes_push(out, CTRL_UPDATE, NULL, upd, 0);
	}
	json_decref(rules);
	json_decref(all);
	return 0;
}

static const struct ctrl_desc agg_desc = {
	.name = "clusterrole-aggregation", .component = "clusterrole-aggregation-controller",
	.api_version = "rbac.authorization.k8s.io/v1", .kind = "ClusterRole",
	.res = CLUSTERROLES,
	.sources = {
		{ CLUSTERROLES, agg_map },
	},
	.decide = agg_decide,
};

int
ctrl_clusterrole_aggregation_start(struct api *api, struct ctrl **out)
{
	return ctrl_start(api, &agg_desc, NULL, out);
}
