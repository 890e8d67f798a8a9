/* obj_kind.c — the table of kinds V6 serves: group, version, names, scope,
 * schema and hooks for each. The API server, the CLI and validation look
 * kinds up here; adding a kind is one row plus its schema. */
#include "obj_schema.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const struct kind kinds[] = {
	{ "", "v1", "v1", "Namespace", "namespaces", "namespace", "ns",
	  false, true, schema_namespace, core_namespace_defaults, NULL, NULL,
	  name_check_dns1123_label },
	{ "", "v1", "v1", "ConfigMap", "configmaps", "configmap", "cm",
	  true, false, schema_configmap, NULL, core_configmap_validate,
	  core_immutable_data_update, NULL },
	{ "", "v1", "v1", "Secret", "secrets", "secret", "",
	  true, false, schema_secret, core_secret_defaults, NULL,
	  core_immutable_data_update, NULL },
	{ "", "v1", "v1", "Pod", "pods", "pod", "po",
	  true, true, schema_pod, core_pod_defaults, NULL, NULL, NULL },
	{ "", "v1", "v1", "Service", "services", "service", "svc",
	  true, true, schema_service, core_service_defaults,
	  core_service_validate, NULL, name_check_dns1035_label },
	{ "", "v1", "v1", "Endpoints", "endpoints", "endpoints", "ep",
	  true, false, schema_endpoints, NULL, NULL, NULL, NULL },
	{ "", "v1", "v1", "Event", "events", "event", "ev",
	  true, false, schema_event, NULL, NULL, NULL, NULL },
	{ "", "v1", "v1", "PersistentVolumeClaim", "persistentvolumeclaims",
	  "persistentvolumeclaim", "pvc",
	  true, true, schema_pvc, core_pvc_defaults, core_pvc_validate, core_pvc_update, NULL },
	{ "", "v1", "v1", "ResourceQuota", "resourcequotas", "resourcequota", "quota",
	  true, true, schema_resourcequota, NULL, NULL, NULL, NULL },
	{ "", "v1", "v1", "LimitRange", "limitranges", "limitrange", "limits",
	  true, false, schema_limitrange, NULL, core_limitrange_validate, NULL, NULL },
	{ "", "v1", "v1", "Node", "nodes", "node", "no",
	  false, true, schema_node, NULL, NULL, NULL, NULL },
	{ "node.k8s.io", "v1", "node.k8s.io/v1", "RuntimeClass", "runtimeclasses",
	  "runtimeclass", "",
	  false, false, schema_runtimeclass, NULL, NULL, node_runtimeclass_update,
	  name_check_dns1123_subdomain },
	{ "apps", "v1", "apps/v1", "Deployment", "deployments", "deployment", "deploy",
	  true, true, schema_deployment, apps_deployment_defaults,
	  apps_deployment_validate, apps_selector_update, NULL },
	{ "apps", "v1", "apps/v1", "ReplicaSet", "replicasets", "replicaset", "rs",
	  true, true, schema_replicaset, apps_replicaset_defaults,
	  apps_replicaset_validate, apps_selector_update, NULL },
	{ "apps", "v1", "apps/v1", "StatefulSet", "statefulsets", "statefulset", "sts",
	  true, true, schema_statefulset, apps_statefulset_defaults,
	  apps_statefulset_validate, apps_statefulset_update, NULL },
	{ "apps", "v1", "apps/v1", "ControllerRevision", "controllerrevisions",
	  "controllerrevision", "",
	  true, false, schema_controllerrevision, NULL, NULL,
	  apps_controllerrevision_update, NULL },
	{ "apps", "v1", "apps/v1", "DaemonSet", "daemonsets", "daemonset", "ds",
	  true, true, schema_daemonset, apps_daemonset_defaults,
	  apps_daemonset_validate, apps_selector_update, NULL },
	{ "autoscaling", "v2", "autoscaling/v2", "HorizontalPodAutoscaler",
	  "horizontalpodautoscalers", "horizontalpodautoscaler", "hpa",
	  true, true, schema_hpa, autoscaling_hpa_defaults, autoscaling_hpa_validate,
	  NULL, NULL },
	{ "autoscaling.k8s.io", "v1", "autoscaling.k8s.io/v1", "VerticalPodAutoscaler",
	  "verticalpodautoscalers", "verticalpodautoscaler", "vpa",
	  true, true, schema_vpa, NULL, autoscaling_vpa_validate, NULL, NULL },
	{ "autoscaling.k8s.io", "v1", "autoscaling.k8s.io/v1",
	  "VerticalPodAutoscalerCheckpoint", "verticalpodautoscalercheckpoints",
	  "verticalpodautoscalercheckpoint", "vpacheckpoint",
	  true, false, schema_vpa_checkpoint, NULL, NULL, NULL, NULL },
	{ "batch", "v1", "batch/v1", "Job", "jobs", "job", "",
	  true, true, schema_job, batch_job_defaults, batch_job_validate,
	  batch_job_update, NULL },
	{ "batch", "v1", "batch/v1", "CronJob", "cronjobs", "cronjob", "cj",
	  true, true, schema_cronjob, batch_cronjob_defaults, batch_cronjob_validate,
	  NULL, NULL },
	{ "gateway.networking.k8s.io", "v1", "gateway.networking.k8s.io/v1", "GatewayClass",
	  "gatewayclasses", "gatewayclass", "gc",
	  false, true, schema_gatewayclass, NULL, NULL, gw_gatewayclass_update, NULL },
	{ "gateway.networking.k8s.io", "v1", "gateway.networking.k8s.io/v1", "Gateway",
	  "gateways", "gateway", "gtw",
	  true, true, schema_gateway, gw_gateway_defaults, gw_gateway_validate, NULL, NULL },
	{ "gateway.networking.k8s.io", "v1", "gateway.networking.k8s.io/v1", "HTTPRoute",
	  "httproutes", "httproute", "",
	  true, true, schema_httproute, gw_httproute_defaults, gw_httproute_validate,
	  NULL, NULL },
	{ "gateway.networking.k8s.io", "v1", "gateway.networking.k8s.io/v1", "GRPCRoute",
	  "grpcroutes", "grpcroute", "",
	  true, true, schema_grpcroute, NULL, NULL, NULL, NULL },
	{ "gateway.networking.k8s.io", "v1", "gateway.networking.k8s.io/v1", "ReferenceGrant",
	  "referencegrants", "referencegrant", "refgrant",
	  true, false, schema_referencegrant, NULL, NULL, NULL, NULL },
	{ "argoproj.io", "v1alpha1", "argoproj.io/v1alpha1", "Rollout", "rollouts", "rollout",
	  "ro", true, true, schema_rollout, argo_rollout_defaults, argo_rollout_validate,
	  apps_selector_update, NULL },
	{ "argoproj.io", "v1alpha1", "argoproj.io/v1alpha1", "AnalysisTemplate",
	  "analysistemplates", "analysistemplate", "at",
	  true, false, schema_analysistemplate, NULL, argo_analysistemplate_validate,
	  NULL, NULL },
	{ "argoproj.io", "v1alpha1", "argoproj.io/v1alpha1", "ClusterAnalysisTemplate",
	  "clusteranalysistemplates", "clusteranalysistemplate", "cat",
	  false, false, schema_analysistemplate, NULL, argo_analysistemplate_validate,
	  NULL, NULL },
	{ "argoproj.io", "v1alpha1", "argoproj.io/v1alpha1", "AnalysisRun",
	  "analysisruns", "analysisrun", "ar",
	  true, true, schema_analysisrun, NULL, argo_analysisrun_validate, NULL, NULL },
	{ "argoproj.io", "v1alpha1", "argoproj.io/v1alpha1", "Application",
	  "applications", "application", "app,apps",
	  true, true, schema_application, NULL, argocd_application_validate, NULL, NULL },
	{ "monitoring.coreos.com", "v1", "monitoring.coreos.com/v1", "PrometheusRule",
	  "prometheusrules", "prometheusrule", "promrule",
	  true, false, schema_prometheusrule, NULL, monitoring_promrule_validate,
	  NULL, NULL },
	{ "", "v1", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", "sa",
	  true, false, schema_serviceaccount, NULL, NULL, NULL, NULL },
	{ "rbac.authorization.k8s.io", "v1", "rbac.authorization.k8s.io/v1", "Role", "roles",
	  "role", "", true, false, schema_role, NULL, rbac_role_validate, NULL,
	  name_check_path_segment },
	{ "rbac.authorization.k8s.io", "v1", "rbac.authorization.k8s.io/v1", "ClusterRole",
	  "clusterroles", "clusterrole", "", false, false, schema_clusterrole, NULL,
	  rbac_clusterrole_validate, NULL, name_check_path_segment },
	{ "rbac.authorization.k8s.io", "v1", "rbac.authorization.k8s.io/v1", "RoleBinding",
	  "rolebindings", "rolebinding", "", true, false, schema_rolebinding,
	  rbac_binding_defaults, rbac_rolebinding_validate, rbac_binding_update,
	  name_check_path_segment },
	{ "rbac.authorization.k8s.io", "v1", "rbac.authorization.k8s.io/v1",
	  "ClusterRoleBinding", "clusterrolebindings", "clusterrolebinding", "",
	  false, false, schema_rolebinding, rbac_binding_defaults,
	  rbac_clusterrolebinding_validate, rbac_binding_update, name_check_path_segment },
};

/* Discovery categories, as the upstream resources declare them: `kubectl
 * get all` lists the "all" ones. */
static const struct {
	const char *kind, *categories;
} kind_cats[] = {
	{ "Pod", "all" }, { "Service", "all" }, { "Deployment", "all" },
	{ "ReplicaSet", "all" }, { "StatefulSet", "all" }, { "DaemonSet", "all" },
	{ "HorizontalPodAutoscaler", "all" }, { "Job", "all" }, { "CronJob", "all" },
	{ "GatewayClass", "gateway-api" }, { "Gateway", "gateway-api" },
	{ "HTTPRoute", "gateway-api" }, { "ReferenceGrant", "gateway-api" },
	{ "GRPCRoute", "gateway-api" },
};

const char *
kind_categories(const struct kind *k)
{
	for (size_t i = 0; i < ARRAY_SIZE(kind_cats); i++)
		if (strcmp(kind_cats[i].kind, k->kind) == 0)
			return kind_cats[i].categories;
	return "";
}

size_t
kind_count(void)
{
	return ARRAY_SIZE(kinds);
}

const struct kind *
kind_at(size_t i)
{
	return i < ARRAY_SIZE(kinds) ? &kinds[i] : NULL;
}

/* Older versions also served for a kind: read and written as the kind's own
 * version (stored as that; Kubernetes would convert, and for the fields V6
 * supports these versions are the same). */
static const struct {
	const char *group, *version, *kind;
} version_aliases[] = {
	{ "gateway.networking.k8s.io", "v1beta1", "GatewayClass" },
	{ "gateway.networking.k8s.io", "v1beta1", "Gateway" },
	{ "gateway.networking.k8s.io", "v1beta1", "HTTPRoute" },
	{ "gateway.networking.k8s.io", "v1beta1", "ReferenceGrant" },
};

bool
kind_serves_version(const struct kind *k, const char *version)
{
	if (!strcmp(k->version, version))
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(version_aliases); i++)
		if (!strcmp(version_aliases[i].group, k->group) &&
		    !strcmp(version_aliases[i].version, version) &&
		    !strcmp(version_aliases[i].kind, k->kind))
			return true;
	return false;
}

const char *
kind_alias_version(const char *group, size_t i)
{
	for (size_t j = 0; j < ARRAY_SIZE(version_aliases); j++) {
		if (strcmp(version_aliases[j].group, group))
			continue;
		bool first = true;	/* a version once, however many kinds have it */
		for (size_t p = 0; p < j; p++)
			if (!strcmp(version_aliases[p].group, group) &&
			    !strcmp(version_aliases[p].version, version_aliases[j].version))
				first = false;
		if (first && i-- == 0)
			return version_aliases[j].version;
	}
	return NULL;
}

const struct kind *
kind_find_gvk(const char *api_version, const char *kind)
{
	if (!api_version || !kind)
		return NULL;
	const char *slash = strchr(api_version, '/');
	size_t glen = slash ? (size_t)(slash - api_version) : 0;
	const char *version = slash ? slash + 1 : api_version;
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (!strcmp(kinds[i].kind, kind) && strlen(kinds[i].group) == glen &&
		    !strncmp(kinds[i].group, api_version, glen) &&
		    kind_serves_version(&kinds[i], version))
			return &kinds[i];
	return NULL;
}

const struct kind *
kind_find_resource(const char *group, const char *version, const char *plural)
{
	if (!group || !version || !plural)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (!strcmp(kinds[i].group, group) &&
		    !strcmp(kinds[i].plural, plural) &&
		    kind_serves_version(&kinds[i], version))
			return &kinds[i];
	return NULL;
}

/* Is name (n bytes, any case) one of the comma-separated short names? */
static bool
short_name_match(const char *list, const char *name, size_t n)
{
	const char *p = list;
	while (*p) {
		size_t len = strcspn(p, ",");
		if (len == n && !strncasecmp(p, name, n))
			return true;
		p += len + (p[len] == ',');
	}
	return false;
}

static bool
resource_name_match(const struct kind *k, const char *name, size_t n)
{
	return (strlen(k->kind) == n && !strncasecmp(k->kind, name, n)) ||
	    (strlen(k->plural) == n && !strncasecmp(k->plural, name, n)) ||
	    (strlen(k->singular) == n && !strncasecmp(k->singular, name, n)) ||
	    short_name_match(k->short_names, name, n);
}

/* "name.rest" where rest is "group" or "version.group" (core: "v1"). */
static bool
qualifier_match(const struct kind *k, const char *rest)
{
	if (!strcasecmp(rest, k->group[0] ? k->group : k->version))
		return true;
	char vg[128];
	snprintf(vg, sizeof vg, "%s%s%s", k->version, k->group[0] ? "." : "", k->group);
	return !strcasecmp(rest, vg);
}

const struct kind *
kind_find_user(const char *name)
{
	if (!name || !*name)
		return NULL;
	const char *dot = strchr(name, '.');
	size_t n = dot ? (size_t)(dot - name) : strlen(name);
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		const struct kind *k = &kinds[i];
		if (!resource_name_match(k, name, n))
			continue;
		if (!dot || qualifier_match(k, dot + 1))
			return k;
	}
	return NULL;
}

const char *
kind_display(const struct kind *k, char *out, size_t len)
{
	if (k->group[0])
		snprintf(out, len, "%s.%s", k->singular, k->group);
	else
		snprintf(out, len, "%s", k->singular);
	return out;
}
