/* obj_schema.h — the declarative schema that drives validation: a field
 * table per object shape (struct schema_field), the shared shapes that more
 * than one API group uses (ObjectMeta, PodSpec, LabelSelector), and the
 * per-kind hooks the table of kinds (obj_kind.c) points at. Only the obj_*
 * files include this; everyone else goes through obj.h. */
#ifndef V6_OBJ_SCHEMA_H
#define V6_OBJ_SCHEMA_H

#include "obj.h"
#include "quantity.h"

enum schema_type {
	ST_ANY,			/* anything */
	ST_STRING,
	ST_INT,			/* JSON integer */
	ST_BOOL,
	ST_NUMBER,		/* integer or real */
	ST_OBJECT,		/* .children are the fields */
	ST_ARRAY,		/* .item is the item type (.children for objects) */
	ST_MAP_STRING,		/* object of string -> string */
	ST_MAP_ANY,		/* object of anything */
	ST_INT_OR_STRING,
	ST_QUANTITY,		/* "100m", "128Mi", "1.5", or a number */
};

#define SF_REQUIRED	0x1	/* absent or null -> FieldValueRequired */
#define SF_UNSUPPORTED	0x2	/* valid upstream, not honoured by v6 */

/* A semantic check run after the type check passed. path is the field's
 * path ("spec.template.spec"); v is never NULL or null. */
typedef void (*schema_check_fn)(const json_t *v, const char *path, struct errlist *errs);

/* One field of an object shape. Tables end with an entry whose name is
 * NULL. For an ARRAY, enums and check apply to each item. */
struct schema_field {
	const char *name;
	enum schema_type type;
	unsigned flags;
	enum schema_type item;			/* ARRAY only */
	const struct schema_field *children;	/* OBJECT, or ARRAY of OBJECT */
	const char *const *enums;		/* NULL-terminated allowed strings */
	const char *const *unsupported;		/* values valid upstream, not in v6 */
	schema_check_fn check;
};

/* Table-writing helpers: FIELD_X("name", .flags = SF_REQUIRED, ...). */
#define F_ANY(n, ...)	{ .name = (n), .type = ST_ANY, __VA_ARGS__ }
#define F_STR(n, ...)	{ .name = (n), .type = ST_STRING, __VA_ARGS__ }
#define F_INT(n, ...)	{ .name = (n), .type = ST_INT, __VA_ARGS__ }
#define F_BOOL(n, ...)	{ .name = (n), .type = ST_BOOL, __VA_ARGS__ }
#define F_NUM(n, ...)	{ .name = (n), .type = ST_NUMBER, __VA_ARGS__ }
#define F_IOS(n, ...)	{ .name = (n), .type = ST_INT_OR_STRING, __VA_ARGS__ }
#define F_QTY(n, ...)	{ .name = (n), .type = ST_QUANTITY, __VA_ARGS__ }
#define F_MAPS(n, ...)	{ .name = (n), .type = ST_MAP_STRING, __VA_ARGS__ }
#define F_MAPA(n, ...)	{ .name = (n), .type = ST_MAP_ANY, __VA_ARGS__ }
#define F_OBJ(n, c, ...) { .name = (n), .type = ST_OBJECT, .children = (c), __VA_ARGS__ }
#define F_ARR(n, t, ...) { .name = (n), .type = ST_ARRAY, .item = (t), __VA_ARGS__ }
#define F_AOBJ(n, c, ...) { .name = (n), .type = ST_ARRAY, .item = ST_OBJECT, \
	.children = (c), __VA_ARGS__ }
#define F_UNSUP(n)	{ .name = (n), .type = ST_ANY, .flags = SF_UNSUPPORTED }
#define F_END		{ .name = NULL }

/* obj_schema.c — the engine */
/* Validates obj against fields, prefixing error paths with path ("" at the
 * top). Collects every error. */
void schema_validate_fields(const struct schema_field *fields, const json_t *obj,
    const char *path, struct errlist *errs);
/* "spec" + "replicas" -> "spec.replicas"; keys with '.' or '/' are written
 * "metadata.labels[app.kubernetes.io/name]". Caller frees. */
char *schema_path_key(const char *path, const char *key);
char *schema_path_index(const char *path, size_t i);
/* FieldValueInvalid with Kubernetes' "Invalid value: <json>: detail". */
void schema_err_invalid(struct errlist *errs, const char *path, const json_t *v,
    const char *fmt, ...) V6_PRINTF(4, 5);
/* Every value of the map v is a quantity ("100m", "128Mi"). */
void check_quantity_map(const json_t *v, const char *path, struct errlist *errs);
/* IANA service name (port names): NULL when valid or a message. */
const char *name_check_iana_svc(const char *s);
/* Does a LabelSelector object select these labels (an object or NULL)? */
bool schema_selector_matches(const json_t *selector, const json_t *labels);
/* Helpers for defaulting: set key only when absent or null. */
void schema_default_str(json_t *o, const char *key, const char *v);
void schema_default_int(json_t *o, const char *key, json_int_t v);

/* Shared shapes. */
extern const struct schema_field schema_object_meta[];
extern const struct schema_field schema_label_selector[];
extern const struct schema_field schema_pod_spec[];
extern const struct schema_field schema_pod_template[];

/* obj_schema_core.c — v1 kinds */
extern const struct schema_field schema_namespace[], schema_configmap[],
    schema_secret[], schema_pod[], schema_service[], schema_endpoints[],
    schema_event[];
void pod_spec_defaults(json_t *spec);
void pod_template_defaults(json_t *template);
void core_namespace_defaults(json_t *obj);
void core_pod_defaults(json_t *obj);
void core_service_defaults(json_t *obj);
void core_secret_defaults(json_t *obj);
void core_service_validate(const json_t *obj, struct errlist *errs);
void core_configmap_validate(const json_t *obj, struct errlist *errs);
void core_immutable_data_update(const json_t *old, const json_t *obj, struct errlist *errs);
/* PersistentVolumeClaim (also the shape of StatefulSet volumeClaimTemplates). */
extern const struct schema_field schema_pvc[], schema_pvc_template[];
/* obj_schema_policy.c: ResourceQuota and LimitRange (v1). */
extern const struct schema_field schema_resourcequota[], schema_limitrange[];
void core_limitrange_validate(const json_t *obj, struct errlist *errs);
void core_pvc_spec_check(const json_t *spec, const char *path, struct errlist *errs);
void core_pvc_spec_defaults(json_t *spec);
void core_pvc_validate(const json_t *obj, struct errlist *errs);
void core_pvc_defaults(json_t *obj);
void core_pvc_update(const json_t *old, const json_t *obj, struct errlist *errs);
/* Node (v1, cluster-scoped). */
extern const struct schema_field schema_node[];

/* obj_schema_node.c — node.k8s.io/v1 RuntimeClass */
extern const struct schema_field schema_runtimeclass[];
void node_runtimeclass_update(const json_t *old, const json_t *obj, struct errlist *errs);

/* obj_schema_apps.c — apps/v1 kinds */
extern const struct schema_field schema_deployment[], schema_replicaset[];
void apps_deployment_defaults(json_t *obj);
void apps_replicaset_defaults(json_t *obj);
void apps_deployment_validate(const json_t *obj, struct errlist *errs);
void apps_replicaset_validate(const json_t *obj, struct errlist *errs);
void apps_selector_update(const json_t *old, const json_t *obj, struct errlist *errs);
/* StatefulSet and its ControllerRevisions */
extern const struct schema_field schema_statefulset[], schema_controllerrevision[];
void apps_statefulset_defaults(json_t *obj);
void apps_statefulset_validate(const json_t *obj, struct errlist *errs);
void apps_statefulset_update(const json_t *old, const json_t *obj, struct errlist *errs);
void apps_controllerrevision_update(const json_t *old, const json_t *obj,
    struct errlist *errs);
/* An int-or-percent field ("25%", 1). */
void schema_check_int_or_percent(const json_t *v, const char *path, struct errlist *errs);
/* Selector non-empty and matching the template's labels; restartPolicy Always. */
void apps_validate_selector_template(const json_t *spec, const char *kind, struct errlist *errs);
/* DaemonSet (apps/v1): schema, checks (selector, rolling update), defaults. */
extern const struct schema_field schema_daemonset[];
void apps_daemonset_validate(const json_t *obj, struct errlist *errs);
void apps_daemonset_defaults(json_t *obj);

/* obj_schema_batch.c — batch/v1 Job and CronJob */
extern const struct schema_field schema_job[], schema_cronjob[];
void batch_job_generate_selector(json_t *obj);
void batch_job_defaults(json_t *obj);
void batch_job_validate(const json_t *obj, struct errlist *errs);
void batch_job_update(const json_t *old, const json_t *obj, struct errlist *errs);
void batch_cronjob_defaults(json_t *obj);
void batch_cronjob_validate(const json_t *obj, struct errlist *errs);

/* obj_schema_rollout.c — argoproj.io/v1alpha1 Rollout */
extern const struct schema_field schema_rollout[];
void argo_rollout_defaults(json_t *obj);
void argo_rollout_validate(const json_t *obj, struct errlist *errs);

/* obj_schema_argo.c — argoproj.io/v1alpha1 AnalysisTemplate,
 * ClusterAnalysisTemplate (same shape) and AnalysisRun */
extern const struct schema_field schema_analysistemplate[], schema_analysisrun[];
void argo_analysistemplate_validate(const json_t *obj, struct errlist *errs);
void argo_analysisrun_validate(const json_t *obj, struct errlist *errs);

/* obj_schema_argocd.c — argoproj.io/v1alpha1 Application (Argo CD) */
extern const struct schema_field schema_application[];
void argocd_application_validate(const json_t *obj, struct errlist *errs);

/* obj_schema_autoscaling.c — autoscaling/v2 HorizontalPodAutoscaler */
extern const struct schema_field schema_hpa[];
void autoscaling_hpa_defaults(json_t *obj);
void autoscaling_hpa_validate(const json_t *obj, struct errlist *errs);
extern const struct schema_field schema_autoscaler_condition[];
/* obj_schema_vpa.c — autoscaling.k8s.io/v1 VerticalPodAutoscaler (+Checkpoint) */
extern const struct schema_field schema_vpa[], schema_vpa_checkpoint[];
void autoscaling_vpa_validate(const json_t *obj, struct errlist *errs);

/* obj_schema_gateway.c — gateway.networking.k8s.io/v1 kinds */
extern const struct schema_field schema_gatewayclass[], schema_gateway[],
    schema_httproute[], schema_referencegrant[], schema_grpcroute[];
void gw_gatewayclass_update(const json_t *old, const json_t *obj, struct errlist *errs);
void gw_gateway_validate(const json_t *obj, struct errlist *errs);
void gw_gateway_defaults(json_t *obj);
void gw_httproute_validate(const json_t *obj, struct errlist *errs);
void gw_httproute_defaults(json_t *obj);

/* obj_schema_monitoring.c — monitoring.coreos.com/v1 PrometheusRule */
extern const struct schema_field schema_prometheusrule[];
void monitoring_promrule_validate(const json_t *obj, struct errlist *errs);
/* Prometheus' duration syntax ("1h30m", "500ms", "0"), as the CRD's pattern. */
bool monitoring_duration_valid(const char *s);

/* obj_schema_rbac.c — rbac.authorization.k8s.io/v1 kinds */
extern const struct schema_field schema_role[], schema_clusterrole[], schema_rolebinding[];
/* v1 ServiceAccount (an identity, so here with RBAC) */
extern const struct schema_field schema_serviceaccount[];
void rbac_role_validate(const json_t *obj, struct errlist *errs);
void rbac_clusterrole_validate(const json_t *obj, struct errlist *errs);
void rbac_rolebinding_validate(const json_t *obj, struct errlist *errs);
void rbac_clusterrolebinding_validate(const json_t *obj, struct errlist *errs);
void rbac_binding_defaults(json_t *obj);
void rbac_binding_update(const json_t *old, const json_t *obj, struct errlist *errs);

#endif
