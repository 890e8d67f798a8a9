/* kustomize_xf.c — kustomize's built-in transformers on a set of
 * resources: namespace, namePrefix / nameSuffix, labels and commonLabels,
 * commonAnnotations, images, replicas (patches are in kustomize_patch.c),
 * run in kustomize's order; and the name-reference fix-up that rewrites
 * references to renamed ConfigMaps, Secrets, Services, ... Field
 * specifications are tables transcribed from kustomize's defaults. */
#include "kustomize_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "obj.h"
#include "util.h"

/* A field specification: group ("" any), kind (NULL any), slash path. */
struct fspec {
	const char *group;
	const char *kind;
	const char *path;
	bool create;
};

#define POD_TEMPLATE_KINDS(F, path) \
	F("", "ReplicationController", path) F("", "Deployment", path) \
	F("", "ReplicaSet", path) F("", "DaemonSet", path) \
	F("apps", "StatefulSet", path) F("batch", "Job", path)
#define FS_CREATE(g, k, p) { g, k, p, true },

/* metadataLabelsFieldSpecs */
#define METADATA_LABELS \
	{ "", NULL, "metadata/labels", true }, \
	POD_TEMPLATE_KINDS(FS_CREATE, "spec/template/metadata/labels") \
	{ "batch", "CronJob", "spec/jobTemplate/metadata/labels", true }, \
	{ "batch", "CronJob", "spec/jobTemplate/spec/template/metadata/labels", true },

static const struct fspec metadata_labels[] = { METADATA_LABELS { NULL, NULL, NULL, 0 } };

#define AFFINITY(g, k) \
	{ g, k, "spec/template/spec/affinity/podAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/labelSelector/matchLabels", false }, \
	{ g, k, "spec/template/spec/affinity/podAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels", false }, \
	{ g, k, "spec/template/spec/affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/labelSelector/matchLabels", false }, \
	{ g, k, "spec/template/spec/affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels", false }, \
	{ g, k, "spec/template/spec/topologySpreadConstraints/labelSelector/matchLabels", false },

/* commonLabelFieldSpecs: selectors too. */
static const struct fspec common_labels[] = {
	{ "", "Service", "spec/selector", true },
	{ "", "ReplicationController", "spec/selector", true },
	{ "", "Deployment", "spec/selector/matchLabels", true },
	AFFINITY("apps", "Deployment")
	{ "", "ReplicaSet", "spec/selector/matchLabels", true },
	{ "", "DaemonSet", "spec/selector/matchLabels", true },
	{ "apps", "StatefulSet", "spec/selector/matchLabels", true },
	AFFINITY("apps", "StatefulSet")
	{ "batch", "Job", "spec/selector/matchLabels", false },
	{ "batch", "CronJob", "spec/jobTemplate/spec/selector/matchLabels", false },
	{ "policy", "PodDisruptionBudget", "spec/selector/matchLabels", false },
	{ "networking.k8s.io", "NetworkPolicy", "spec/podSelector/matchLabels", false },
	{ "networking.k8s.io", "NetworkPolicy", "spec/ingress/from/podSelector/matchLabels", false },
	{ "networking.k8s.io", "NetworkPolicy", "spec/egress/to/podSelector/matchLabels", false },
	METADATA_LABELS
	{ "apps", "StatefulSet", "spec/volumeClaimTemplates[]/metadata/labels", true },
	{ NULL, NULL, NULL, 0 },
};

static const struct fspec only_metadata_labels[] = {
	{ "", NULL, "metadata/labels", true }, { NULL, NULL, NULL, 0 },
};

static const struct fspec common_annotations[] = {
	{ "", NULL, "metadata/annotations", true },
	POD_TEMPLATE_KINDS(FS_CREATE, "spec/template/metadata/annotations")
	{ "batch", "CronJob", "spec/jobTemplate/metadata/annotations", true },
	{ "batch", "CronJob", "spec/jobTemplate/spec/template/metadata/annotations", true },
	{ NULL, NULL, NULL, 0 },
};

static const char *const replica_kinds[] = {
	"Deployment", "ReplicationController", "ReplicaSet", "StatefulSet", NULL,
};

static const char *const cluster_kinds[] = {
	"Namespace", "Node", "PersistentVolume", "StorageClass", "ClusterRole",
	"ClusterRoleBinding", "CustomResourceDefinition", "PriorityClass",
	"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService",
	"IngressClass", "RuntimeClass", "CSIDriver", "CSINode", "VolumeAttachment",
	"PodSecurityPolicy", "ComponentStatus", "CertificateSigningRequest",
	"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
	"ClusterIssuer", "FlowSchema", "PriorityLevelConfiguration", NULL,
};

/* nameReference: {referred kind, referrer kind, path}. A path ending at a
 * mapping (subjects, webhooks' service) sets its name and namespace. */
static const struct nameref {
	const char *target, *referrer, *path;
} namerefs[] = {
	{ "Deployment", "HorizontalPodAutoscaler", "spec/scaleTargetRef/name" },
	{ "ReplicationController", "HorizontalPodAutoscaler", "spec/scaleTargetRef/name" },
	{ "ReplicaSet", "HorizontalPodAutoscaler", "spec/scaleTargetRef/name" },
	{ "StatefulSet", "HorizontalPodAutoscaler", "spec/scaleTargetRef/name" },
	{ "ConfigMap", "Pod", "spec/volumes/configMap/name" },
	{ "ConfigMap", "Pod", "spec/containers/env/valueFrom/configMapKeyRef/name" },
	{ "ConfigMap", "Pod", "spec/initContainers/env/valueFrom/configMapKeyRef/name" },
	{ "ConfigMap", "Pod", "spec/containers/envFrom/configMapRef/name" },
	{ "ConfigMap", "Pod", "spec/initContainers/envFrom/configMapRef/name" },
	{ "ConfigMap", "Pod", "spec/volumes/projected/sources/configMap/name" },
	{ "ConfigMap", "PodTemplate", "template/spec/volumes/configMap/name" },
	{ "ConfigMap", "PodTemplate", "template/spec/containers/env/valueFrom/configMapKeyRef/name" },
	{ "ConfigMap", "PodTemplate", "template/spec/initContainers/env/valueFrom/configMapKeyRef/name" },
	{ "ConfigMap", "PodTemplate", "template/spec/containers/envFrom/configMapRef/name" },
	{ "ConfigMap", "PodTemplate", "template/spec/initContainers/envFrom/configMapRef/name" },
	{ "ConfigMap", "PodTemplate", "template/spec/volumes/projected/sources/configMap/name" },
	{ "ConfigMap", "Deployment", "spec/template/spec/volumes/configMap/name" },
	{ "ConfigMap", "Deployment", "spec/template/spec/containers/env/valueFrom/configMapKeyRef/name" },
	{ "ConfigMap", "Deployment", "spec/template/spec/initContainers/env/valueFrom/configMapKeyRef/name" },
	{ "ConfigMap", "Deployment", "spec/template/spec/containers/envFrom/configMapRef/name" },
	{ "ConfigMap", "Deployment", "spec/template/spec/initContainers/envFrom/configMapRef/name" },
	{ "ConfigMap", "Deployment", "spec/template/spec/volumes/projected/sources/configMap/name" },
	{ "ConfigMap", "ReplicaSet", "spec/template/spec/volumes/configMap/name" },
	{ "ConfigMap", "ReplicaSet", "spec/template/spec/containers/env/valueFrom/configMapKeyRef/name" },
	{ "ConfigMap", "ReplicaSet", "spec/template/spec/initContainers/env/valueFrom/configMapKeyRef/name" },
	{ "ConfigMap", "ReplicaSet", "spec/template/spec/containers/envFrom/configMapRef/name" },
	{ "ConfigMap", "ReplicaSet", "spec/template/spec/initContainers/envFrom/configMapRef/name" },
	{ "ConfigMap", "ReplicaSet", "spec/template/spec/volumes/projected/sources/configMap/name" },
	{ "ConfigMap", "DaemonSet", "spec/template/spec/volumes/configMap/name" },
	{ "ConfigMap", "DaemonSet", "spec/template/spec/containers/env/valueFrom/configMapKeyRef/name" },
	{ "ConfigMap", "DaemonSet", "spec/template/spec/initContainers/env/valueFrom/configMapKeyRef/name" },
	{ "ConfigMap", "DaemonSet", "spec/template/spec/containers/envFrom/configMapRef/name" },
	{ "ConfigMap", "DaemonSet", "spec/template/spec/initContainers/envFrom/configMapRef/name" },
	{ "ConfigMap", "DaemonSet", "spec/template/spec/volumes/projected/sources/configMap/name" },
	{ "ConfigMap", "StatefulSet", "spec/template/spec/volumes/configMap/name" },
	{ "ConfigMap", "StatefulSet", "spec/template/spec/containers/env/valueFrom/configMapKeyRef/name" },
	{ "ConfigMap", "StatefulSet", "spec/template/spec/initContainers/env/valueFrom/configMapKeyRef/name" },
	{ "ConfigMap", "StatefulSet", "spec/template/spec/containers/envFrom/configMapRef/name" },
	{ "ConfigMap", "StatefulSet", "spec/template/spec/initContainers/envFrom/configMapRef/name" },
	{ "ConfigMap", "StatefulSet", "spec/template/spec/volumes/projected/sources/configMap/name" },
	{ "ConfigMap", "Job", "spec/template/spec/volumes/configMap/name" },
	{ "ConfigMap", "Job", "spec/template/spec/containers/env/valueFrom/configMapKeyRef/name" },
	{ "ConfigMap", "Job", "spec/template/spec/initContainers/env/valueFrom/configMapKeyRef/name" },
	{ "ConfigMap", "Job", "spec/template/spec/containers/envFrom/configMapRef/name" },
	{ "ConfigMap", "Job", "spec/template/spec/initContainers/envFrom/configMapRef/name" },
	{ "ConfigMap", "Job", "spec/template/spec/volumes/projected/sources/configMap/name" },
	{ "ConfigMap", "CronJob", "spec/jobTemplate/spec/template/spec/volumes/configMap/name" },
	{ "ConfigMap", "CronJob", "spec/jobTemplate/spec/template/spec/volumes/projected/sources/configMap/name" },
	{ "ConfigMap", "CronJob", "spec/jobTemplate/spec/template/spec/containers/env/valueFrom/configMapKeyRef/name" },
	{ "ConfigMap", "CronJob", "spec/jobTemplate/spec/template/spec/initContainers/env/valueFrom/configMapKeyRef/name" },
	{ "ConfigMap", "CronJob", "spec/jobTemplate/spec/template/spec/containers/envFrom/configMapRef/name" },
	{ "ConfigMap", "CronJob", "spec/jobTemplate/spec/template/spec/initContainers/envFrom/configMapRef/name" },
	{ "ConfigMap", "Node", "spec/configSource/configMap" },
	{ "ConfigMap", "Role", "rules/resourceNames" },
	{ "ConfigMap", "ClusterRole", "rules/resourceNames" },
	{ "Secret", "Pod", "spec/volumes/secret/secretName" },
	{ "Secret", "Pod", "spec/containers/env/valueFrom/secretKeyRef/name" },
	{ "Secret", "Pod", "spec/initContainers/env/valueFrom/secretKeyRef/name" },
	{ "Secret", "Pod", "spec/containers/envFrom/secretRef/name" },
	{ "Secret", "Pod", "spec/initContainers/envFrom/secretRef/name" },
	{ "Secret", "Pod", "spec/imagePullSecrets/name" },
	{ "Secret", "Pod", "spec/volumes/projected/sources/secret/name" },
	{ "Secret", "PodTemplate", "template/spec/volumes/secret/secretName" },
	{ "Secret", "PodTemplate", "template/spec/containers/env/valueFrom/secretKeyRef/name" },
	{ "Secret", "PodTemplate", "template/spec/initContainers/env/valueFrom/secretKeyRef/name" },
	{ "Secret", "PodTemplate", "template/spec/containers/envFrom/secretRef/name" },
	{ "Secret", "PodTemplate", "template/spec/initContainers/envFrom/secretRef/name" },
	{ "Secret", "PodTemplate", "template/spec/imagePullSecrets/name" },
	{ "Secret", "PodTemplate", "template/spec/volumes/projected/sources/secret/name" },
	{ "Secret", "Deployment", "spec/template/spec/volumes/secret/secretName" },
	{ "Secret", "Deployment", "spec/template/spec/containers/env/valueFrom/secretKeyRef/name" },
	{ "Secret", "Deployment", "spec/template/spec/initContainers/env/valueFrom/secretKeyRef/name" },
	{ "Secret", "Deployment", "spec/template/spec/containers/envFrom/secretRef/name" },
	{ "Secret", "Deployment", "spec/template/spec/initContainers/envFrom/secretRef/name" },
	{ "Secret", "Deployment", "spec/template/spec/imagePullSecrets/name" },
	{ "Secret", "Deployment", "spec/template/spec/volumes/projected/sources/secret/name" },
	{ "Secret", "ReplicaSet", "spec/template/spec/volumes/secret/secretName" },
	{ "Secret", "ReplicaSet", "spec/template/spec/containers/env/valueFrom/secretKeyRef/name" },
	{ "Secret", "ReplicaSet", "spec/template/spec/initContainers/env/valueFrom/secretKeyRef/name" },
	{ "Secret", "ReplicaSet", "spec/template/spec/containers/envFrom/secretRef/name" },
	{ "Secret", "ReplicaSet", "spec/template/spec/initContainers/envFrom/secretRef/name" },
	{ "Secret", "ReplicaSet", "spec/template/spec/imagePullSecrets/name" },
	{ "Secret", "ReplicaSet", "spec/template/spec/volumes/projected/sources/secret/name" },
	{ "Secret", "DaemonSet", "spec/template/spec/volumes/secret/secretName" },
	{ "Secret", "DaemonSet", "spec/template/spec/containers/env/valueFrom/secretKeyRef/name" },
	{ "Secret", "DaemonSet", "spec/template/spec/initContainers/env/valueFrom/secretKeyRef/name" },
	{ "Secret", "DaemonSet", "spec/template/spec/containers/envFrom/secretRef/name" },
	{ "Secret", "DaemonSet", "spec/template/spec/initContainers/envFrom/secretRef/name" },
	{ "Secret", "DaemonSet", "spec/template/spec/imagePullSecrets/name" },
	{ "Secret", "DaemonSet", "spec/template/spec/volumes/projected/sources/secret/name" },
	{ "Secret", "StatefulSet", "spec/template/spec/volumes/secret/secretName" },
	{ "Secret", "StatefulSet", "spec/template/spec/containers/env/valueFrom/secretKeyRef/name" },
	{ "Secret", "StatefulSet", "spec/template/spec/initContainers/env/valueFrom/secretKeyRef/name" },
	{ "Secret", "StatefulSet", "spec/template/spec/containers/envFrom/secretRef/name" },
	{ "Secret", "StatefulSet", "spec/template/spec/initContainers/envFrom/secretRef/name" },
	{ "Secret", "StatefulSet", "spec/template/spec/imagePullSecrets/name" },
	{ "Secret", "StatefulSet", "spec/template/spec/volumes/projected/sources/secret/name" },
	{ "Secret", "Job", "spec/template/spec/volumes/secret/secretName" },
	{ "Secret", "Job", "spec/template/spec/containers/env/valueFrom/secretKeyRef/name" },
	{ "Secret", "Job", "spec/template/spec/initContainers/env/valueFrom/secretKeyRef/name" },
	{ "Secret", "Job", "spec/template/spec/containers/envFrom/secretRef/name" },
	{ "Secret", "Job", "spec/template/spec/initContainers/envFrom/secretRef/name" },
	{ "Secret", "Job", "spec/template/spec/imagePullSecrets/name" },
	{ "Secret", "Job", "spec/template/spec/volumes/projected/sources/secret/name" },
	{ "Secret", "CronJob", "spec/jobTemplate/spec/template/spec/volumes/secret/secretName" },
	{ "Secret", "CronJob", "spec/jobTemplate/spec/template/spec/volumes/projected/sources/secret/name" },
	{ "Secret", "CronJob", "spec/jobTemplate/spec/template/spec/containers/env/valueFrom/secretKeyRef/name" },
	{ "Secret", "CronJob", "spec/jobTemplate/spec/template/spec/initContainers/env/valueFrom/secretKeyRef/name" },
	{ "Secret", "CronJob", "spec/jobTemplate/spec/template/spec/containers/envFrom/secretRef/name" },
	{ "Secret", "CronJob", "spec/jobTemplate/spec/template/spec/initContainers/envFrom/secretRef/name" },
	{ "Secret", "CronJob", "spec/jobTemplate/spec/template/spec/imagePullSecrets/name" },
	{ "Secret", "Ingress", "spec/tls/secretName" },
	{ "Secret", "Ingress", "spec/tls/secretName" },
	{ "Secret", "ServiceAccount", "imagePullSecrets/name" },
	{ "Secret", "StorageClass", "parameters/secretName" },
	{ "Secret", "StorageClass", "parameters/adminSecretName" },
	{ "Secret", "StorageClass", "parameters/userSecretName" },
	{ "Secret", "StorageClass", "parameters/secretRef" },
	{ "Secret", "Role", "rules/resourceNames" },
	{ "Secret", "ClusterRole", "rules/resourceNames" },
	{ "Secret", "Service", "spec/template/spec/containers/env/valueFrom/secretKeyRef/name" },
	{ "Secret", "PersistentVolume", "spec/azureFile/secretName" },
	{ "Service", "StatefulSet", "spec/serviceName" },
	{ "Service", "Ingress", "spec/rules/http/paths/backend/serviceName" },
	{ "Service", "Ingress", "spec/backend/serviceName" },
	{ "Service", "Ingress", "spec/rules/http/paths/backend/service/name" },
	{ "Service", "Ingress", "spec/defaultBackend/service/name" },
	{ "Service", "APIService", "spec/service/name" },
	{ "Service", "ValidatingWebhookConfiguration", "webhooks/clientConfig/service" },
	{ "Service", "MutatingWebhookConfiguration", "webhooks/clientConfig/service" },
	{ "Role", "RoleBinding", "roleRef/name" },
	{ "ClusterRole", "RoleBinding", "roleRef/name" },
	{ "ClusterRole", "ClusterRoleBinding", "roleRef/name" },
	{ "ServiceAccount", "RoleBinding", "subjects" },
	{ "ServiceAccount", "ClusterRoleBinding", "subjects" },
	{ "ServiceAccount", "Pod", "spec/serviceAccountName" },
	{ "ServiceAccount", "StatefulSet", "spec/template/spec/serviceAccountName" },
	{ "ServiceAccount", "Deployment", "spec/template/spec/serviceAccountName" },
	{ "ServiceAccount", "ReplicationController", "spec/template/spec/serviceAccountName" },
	{ "ServiceAccount", "CronJob", "spec/jobTemplate/spec/template/spec/serviceAccountName" },
	{ "ServiceAccount", "Job", "spec/template/spec/serviceAccountName" },
	{ "ServiceAccount", "DaemonSet", "spec/template/spec/serviceAccountName" },
	{ "PersistentVolumeClaim", "Pod", "spec/volumes/persistentVolumeClaim/claimName" },
	{ "PersistentVolumeClaim", "StatefulSet", "spec/template/spec/volumes/persistentVolumeClaim/claimName" },
	{ "PersistentVolumeClaim", "Deployment", "spec/template/spec/volumes/persistentVolumeClaim/claimName" },
	{ "PersistentVolumeClaim", "ReplicationController", "spec/template/spec/volumes/persistentVolumeClaim/claimName" },
	{ "PersistentVolumeClaim", "CronJob", "spec/jobTemplate/spec/template/spec/volumes/persistentVolumeClaim/claimName" },
	{ "PersistentVolumeClaim", "Job", "spec/template/spec/volumes/persistentVolumeClaim/claimName" },
	{ "PersistentVolumeClaim", "DaemonSet", "spec/template/spec/volumes/persistentVolumeClaim/claimName" },
	{ "PersistentVolume", "PersistentVolumeClaim", "spec/volumeName" },
	{ "PersistentVolume", "ClusterRole", "rules/resourceNames" },
	{ "StorageClass", "PersistentVolume", "spec/storageClassName" },
	{ "StorageClass", "PersistentVolumeClaim", "spec/storageClassName" },
	{ "StorageClass", "StatefulSet", "spec/volumeClaimTemplates/spec/storageClassName" },
	{ "PriorityClass", "Pod", "spec/priorityClassName" },
	{ "PriorityClass", "StatefulSet", "spec/template/spec/priorityClassName" },
	{ "PriorityClass", "Deployment", "spec/template/spec/priorityClassName" },
	{ "PriorityClass", "ReplicationController", "spec/template/spec/priorityClassName" },
	{ "PriorityClass", "CronJob", "spec/jobTemplate/spec/template/spec/priorityClassName" },
	{ "PriorityClass", "Job", "spec/template/spec/priorityClassName" },
	{ "PriorityClass", "DaemonSet", "spec/template/spec/priorityClassName" },
	{ "IngressClass", "Ingress", "spec/ingressClassName" },
	{ "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "spec/policyName" },
};

bool
kz_cluster_scoped(const char *kind)
{
	for (const char *const *k = cluster_kinds; *k; k++)
		if (!strcmp(kind, *k))
			return true;
	return false;
}

static bool
group_is(const json_t *obj, const char *group)
{
	const char *av = obj_api_version(obj), *s = strchr(av, '/');
	size_t n = s ? (size_t)(s - av) : 0;
	return strlen(group) == n && !strncmp(av, group, n);
}

static bool
fspec_selects(const struct fspec *fs, const json_t *obj)
{
	return (!fs->kind || !strcmp(fs->kind, obj_kind(obj))) &&
	    (!fs->group[0] || group_is(obj, fs->group));
}

/* Calls fn(parent, key, arg) for every place the slash path reaches in v;
 * a sequence on the way is walked element by element ("[]" is optional).
 * create makes missing mappings on the way (and the last one), never a
 * missing sequence ("key[]"): kustomize leaves a StatefulSet without
 * volumeClaimTemplates without them, and a mapping there is invalid. */
typedef int (*fs_fn)(json_t *parent, const char *key, void *arg);

static int
fs_walk(json_t *v, const char *path, bool create, fs_fn fn, void *arg)
{
	if (json_is_array(v)) {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e) {
			int rc = fs_walk(e, path, create, fn, arg);
			if (rc < 0)
				return rc;
		}
		return 0;
	}
	if (!json_is_object(v))
		return 0;
	const char *slash = strchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : strlen(path);
	char *key = xstrndup(path, n);
	size_t kl = strlen(key);
	bool seq = kl > 2 && !strcmp(key + kl - 2, "[]");
	if (seq)
		key[kl - 2] = 0;
	int rc = 0;
	if (!slash) {
		rc = fn(v, key, arg);
	} else {
		json_t *next = json_object_get(v, key);
		if (!next && create && !seq) {
			next = json_object();
			json_object_set_new(v, key, next);
		}
		if (next && !json_is_null(next))
			rc = fs_walk(next, slash + 1, create, fn, arg);
	}
	free(key);
	return rc;
}

/* Merges the string map arg into parent[key] (made when absent). */
static int
set_map_fn(json_t *parent, const char *key, void *arg)
{
	json_t *cur = json_object_get(parent, key);
	if (!json_is_object(cur)) {
		cur = json_object();
		json_object_set_new(parent, key, cur);
	}
	json_object_update(cur, arg);
	return 0;
}

/* Like set_map_fn, but only where the map already exists. */
static int
update_map_fn(json_t *parent, const char *key, void *arg)
{
	json_t *cur = json_object_get(parent, key);
	if (json_is_object(cur))
		json_object_update(cur, arg);
	return 0;
}

static void
apply_map(struct kresmap *m, const struct fspec *specs, const json_t *map)
{
	if (!json_is_object(map) || !json_object_size(map))
		return;
	for (size_t i = 0; i < m->n; i++)
		for (const struct fspec *fs = specs; fs->path; fs++)
			if (fspec_selects(fs, m->v[i].obj))
				fs_walk(m->v[i].obj, fs->path, fs->create,
				    fs->create ? set_map_fn : update_map_fn, (void *)map);
}

/* Label and annotation values are strings in Kubernetes; kustomize
 * writes numbers and booleans given in the kustomization as strings. */
static json_t *
string_map(const json_t *in)
{
	json_t *out = json_object();
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)in, k, v) {
		if (json_is_string(v)) {
			json_object_set(out, k, v);
		} else {
			char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
			json_object_set_new(out, k, json_string(json_is_null(v) ? "" : s));
			free(s);
		}
	}
	return out;
}

static void
xf_labels(const struct kust *k, struct kresmap *m)
{
	json_t *common = json_object_get(k->k, "commonLabels");
	if (json_is_object(common)) {
		json_t *map = string_map(common);
		apply_map(m, common_labels, map);
		json_decref(map);
	}
	size_t i;
	json_t *l;
	json_array_foreach(json_object_get(k->k, "labels"), i, l) {
		json_t *map = string_map(json_object_get(l, "pairs"));
		const struct fspec *specs = only_metadata_labels;
		if (json_is_true(json_object_get(l, "includeSelectors")))
			specs = common_labels;
		else if (json_is_true(json_object_get(l, "includeTemplates")))
			specs = metadata_labels;
		apply_map(m, specs, map);
		json_decref(map);
	}
}

static void
xf_annotations(const struct kust *k, struct kresmap *m)
{
	json_t *a = json_object_get(k->k, "commonAnnotations");
	if (!json_is_object(a))
		return;
	json_t *map = string_map(a);
	apply_map(m, common_annotations, map);
	json_decref(map);
}

static int
set_ns_fn(json_t *parent, const char *key, void *arg)
{
	json_object_set_new(parent, key, json_string(arg));
	return 0;
}

/* Subjects named "default" follow the namespace (kustomize's
 * DefaultSubjectsOnly role-binding rule). */
static void
ns_subjects(json_t *obj, const char *ns)
{
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(obj, "subjects"), i, s)
		if (!strcmp(obj_str(s, "name"), "default"))
			json_object_set_new(s, "namespace", json_string(ns));
}

static void
xf_namespace(const struct kust *k, struct kresmap *m)
{
	const char *ns = obj_str(k->k, "namespace");
	if (!ns[0])
		return;
	for (size_t i = 0; i < m->n; i++) {
		struct kres *r = &m->v[i];
		const char *kind = obj_kind(r->obj);
		kz_store_prev(r);
		if (!strcmp(kind, "Namespace"))
			json_object_set_new(obj_metadata(r->obj), "name", json_string(ns));
		else if (!kz_cluster_scoped(kind))
			json_object_set_new(obj_metadata(r->obj), "namespace", json_string(ns));
		if (!strcmp(kind, "RoleBinding") || !strcmp(kind, "ClusterRoleBinding"))
			ns_subjects(r->obj, ns);
		if (!strcmp(kind, "APIService"))
			fs_walk(r->obj, "spec/service/namespace", true, set_ns_fn, (void *)ns);
		if (!strcmp(kind, "CustomResourceDefinition"))
			fs_walk(r->obj, "spec/conversion/webhook/clientConfig/service/namespace",
			    false, set_ns_fn, (void *)ns);
	}
}

/* namePrefix, then nameSuffix, each recorded (kustomize's build
 * annotations) for telling references apart, and each a previous id. */
static void
xf_fix(struct kresmap *m, const char *fix, bool prefix)
{
	if (!fix[0])
		return;
	for (size_t i = 0; i < m->n; i++) {
		struct kres *r = &m->v[i];
		const char *kind = obj_kind(r->obj);
		if (!strcmp(kind, "CustomResourceDefinition") || !strcmp(kind, "APIService") ||
		    !strcmp(kind, "Namespace"))
			continue;
		json_array_append_new(prefix ? r->prefixes : r->suffixes, json_string(fix));
		kz_store_prev(r);
		char *name = prefix ? xasprintf("%s%s", fix, obj_name(r->obj))
		    : xasprintf("%s%s", obj_name(r->obj), fix);
		json_object_set_new(obj_metadata(r->obj), "name", json_string(name));
		free(name);
	}
}

static int
image_fn(json_t *parent, const char *key, void *arg)
{
	const char *img = json_string_value(json_object_get(parent, key));
	char *n = img ? kz_image_set(img, arg) : NULL;
	if (n)
		json_object_set_new(parent, key, json_string(n));
	free(n);
	return 0;
}

/* Every containers / initContainers list anywhere in obj (kustomize's
 * legacy image walk), image set by entry. */
static void
images_walk(json_t *v, const json_t *entry)
{
	size_t i;
	json_t *e;
	const char *key;
	if (json_is_array(v)) {
		json_array_foreach(v, i, e)
			images_walk(e, entry);
		return;
	}
	json_object_foreach(v, key, e) {
		images_walk(e, entry);
		if (strcmp(key, "containers") && strcmp(key, "initContainers"))
			continue;
		json_t *c;
		json_array_foreach(e, i, c)
			if (json_is_object(c))
				image_fn(c, "image", (void *)entry);
	}
}

/* kustomize runs each images entry twice: the legacy walk of every
 * containers list, then its field specs; a tagSuffix can land twice. */
static void
xf_images(const struct kust *k, struct kresmap *m)
{
	static const char *const paths[] = {
		"spec/containers[]/image", "spec/initContainers[]/image",
		"spec/template/spec/containers[]/image",
		"spec/template/spec/initContainers[]/image",
	};
	size_t i;
	json_t *entry;
	json_array_foreach(json_object_get(k->k, "images"), i, entry)
		for (size_t j = 0; j < m->n; j++) {
			if (strcmp(obj_kind(m->v[j].obj), "CustomResourceDefinition"))
				images_walk(m->v[j].obj, entry);
			for (size_t p = 0; p < ARRAY_SIZE(paths); p++)
				fs_walk(m->v[j].obj, paths[p], false, image_fn, entry);
		}
}

static int
xf_replicas(const struct kust *k, struct kresmap *m, char **err)
{
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(k->k, "replicas"), i, e) {
		json_t *count = json_object_get(e, "count");
		bool found = false;
		for (size_t j = 0; j < m->n; j++) {
			struct kres *r = &m->v[j];
			bool kind_ok = false;
			for (const char *const *kn = replica_kinds; *kn; kn++)
				kind_ok |= !strcmp(*kn, obj_kind(r->obj));
			if (!kind_ok || !kz_had_id(r, obj_str(e, "name"), NULL))
				continue;
			found = true;
			json_object_set(obj_child(r->obj, "spec"), "replicas",
			    count ? count : json_integer(0));
		}
		if (!found) {
			*err = xasprintf("%s: resource with name %s does not match a config with the "
			    "following GVK [Deployment ReplicationController ReplicaSet StatefulSet]",
			    k->file, obj_str(e, "name"));
			return -ENOENT;
		}
	}
	return 0;
}

int
kz_transform(const struct kust *k, struct kresmap *m, char **err)
{
	int rc = kz_patch_step(k, m, "patchesStrategicMerge", err);
	if (rc == 0)
		rc = kz_patch_step(k, m, "patches", err);
	if (rc < 0)
		return rc;
	xf_namespace(k, m);
	xf_fix(m, obj_str(k->k, "namePrefix"), true);
	xf_fix(m, obj_str(k->k, "nameSuffix"), false);
	xf_labels(k, m);
	xf_annotations(k, m);
	rc = kz_patch_step(k, m, "patchesJson6902", err);
	if (rc == 0)
		rc = xf_replicas(k, m, err);
	if (rc == 0)
		xf_images(k, m);
	return rc;
}

/* ---- name references --------------------------------------------------- */

static bool
prev_name_matches(const struct kres *r, const char *name)
{
	size_t i;
	json_t *p;
	json_array_foreach(r->prev, i, p)
		if (!strcmp(obj_str(p, "name"), name))
			return true;
	return false;
}

struct refctx {
	struct kresmap *m;
	const struct kres *referrer;
	const struct nameref *nr;
	char **err;
};

/* kustomize's selectReferral: the one resource of the target kind once
 * named old, in the referrer's namespace (cluster-scoped ones and
 * ServiceAccounts anywhere); ns_filter (may be NULL) narrows candidates
 * to that namespace. Returns the index, -1 for none, -2 (err set) for an
 * ambiguous reference. */
/* kustomize's SameEndingSubSlice: the shorter list ends the longer one
 * (two empty lists are equal, an empty and a non-empty one are not). */
static bool
same_ending(const json_t *a, const json_t *b)
{
	size_t na = json_array_size(a), nb = json_array_size(b);
	if (na > nb)
		return same_ending(b, a);
	if (na == 0)
		return nb == 0;
	for (size_t i = 0; i < na; i++)
		if (strcmp(json_string_value(json_array_get(a, i)),
		    json_string_value(json_array_get(b, i + nb - na))))
			return false;
	return true;
}

/* PrefixesSuffixesEquals: allow_empty lets a side with no prefixes (or
 * suffixes) match anything. */
static bool
fixes_equal(const struct kres *r, const struct kres *o, bool allow_empty)
{
	bool pe = allow_empty && (!json_array_size(r->prefixes) || !json_array_size(o->prefixes));
	bool se = allow_empty && (!json_array_size(r->suffixes) || !json_array_size(o->suffixes));
	return (pe || same_ending(r->prefixes, o->prefixes)) &&
	    (se || same_ending(r->suffixes, o->suffixes));
}

/* Keeps the candidates (indices into m) with fixes_equal to the referrer. */
static size_t
sieve_fixes(struct refctx *c, size_t *cand, size_t n, bool allow_empty)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (fixes_equal(&c->m->v[cand[i]], c->referrer, allow_empty))
			cand[k++] = cand[i];
	return k;
}

/* The namespace r had when it was read (before any transformer). */
static const char *
orig_ns(const struct kres *r)
{
	const json_t *first = json_array_get(r->prev, 0);
	return first ? obj_str(first, "namespace") : obj_namespace(r->obj);
}

/* Whether a subject's namespace ns names the namespaces the resources had
 * when read (true when any namespaced resource had it) or, failing that,
 * the ones they have now: kustomize's filterMapCandidatesByNamespace,
 * which groups by original namespace first. */
static bool
ns_by_origin(const struct kresmap *m, const char *ns)
{
	for (size_t i = 0; i < m->n; i++)
		if (!kz_cluster_scoped(obj_kind(m->v[i].obj)) &&
		    !strcmp(kz_eff_ns(orig_ns(&m->v[i])), kz_eff_ns(ns)))
			return true;
	return false;
}

/* kustomize's selectReferral: the resources of the target kind once named
 * old, in the referrer's namespace (cluster-scoped ones and
 * ServiceAccounts anywhere; ns_filter, may be NULL, narrows them to one
 * namespace); several left are told apart by the name prefixes and
 * suffixes they and the referrer got. Returns the index, -1 for none, -2
 * (err set) for an ambiguous reference. */
static ssize_t
select_referral(struct refctx *c, const char *old, const char *ns_filter,
    const char *role_kind)
{
	const json_t *ref = c->referrer->obj;
	bool ref_cluster = kz_cluster_scoped(obj_kind(ref));
	size_t *cand = xcalloc(c->m->n + 1, sizeof *cand), n = 0;
	bool by_origin = ns_filter && ns_by_origin(c->m, ns_filter);
	for (size_t i = 0; i < c->m->n; i++) {
		const struct kres *r = &c->m->v[i];
		const char *kind = obj_kind(r->obj);
		if (strcmp(kind, c->nr->target) || !prev_name_matches(r, old))
			continue;
		if (role_kind && strcmp(role_kind, kind))
			continue;
		if (ns_filter && strcmp(kz_eff_ns(ns_filter), kz_eff_ns(by_origin ? orig_ns(r) :
		    obj_namespace(r->obj))))
			continue;
		if (!ref_cluster && !kz_cluster_scoped(kind) && strcmp(kind, "ServiceAccount") &&
		    strcmp(kz_eff_ns(obj_namespace(ref)), kz_eff_ns(obj_namespace(r->obj))))
			continue;
		cand[n++] = i;
	}
	if (n > 1)
		n = sieve_fixes(c, cand, n, true);
	if (n > 1)
		n = sieve_fixes(c, cand, n, false);
	bool same = true;
	for (size_t i = 1; i < n; i++) {
		const json_t *a = c->m->v[cand[0]].obj, *b = c->m->v[cand[i]].obj;
		if (strcmp(obj_name(a), obj_name(b)) || strcmp(obj_namespace(a), obj_namespace(b)))
			same = false;
	}
	ssize_t found = n ? (ssize_t)cand[0] : -1;
	free(cand);
	if (!same) {
		*c->err = xasprintf("found multiple possible referrals for %s/%s in %s/%s",
		    c->nr->target, old, obj_kind(ref), obj_name(ref));
		return -2;
	}
	return found;
}

static int
fix_string(struct refctx *c, json_t *holder, const char *key, size_t idx, json_t *v)
{
	const char *role_kind = NULL;
	if (str_has_suffix(c->nr->path, "roleRef/name"))
		role_kind = obj_str(json_object_get(c->referrer->obj, "roleRef"), "kind");
	ssize_t at = select_referral(c, json_string_value(v), NULL, role_kind);
	if (at == -2)
		return -EINVAL;
	if (at < 0)
		return 0;
	json_t *name = json_string(obj_name(c->m->v[at].obj));
	if (json_is_array(holder))
		json_array_set_new(holder, idx, name);
	else
		json_object_set_new(holder, key, name);
	return 0;
}

/* A mapping {name, namespace} (subjects, webhook services). */
static int
fix_mapping(struct refctx *c, json_t *map)
{
	const char *name = obj_str(map, "name");
	if (!name[0])
		return 0;
	json_t *nsv = json_object_get(map, "namespace");
	ssize_t at = select_referral(c, name, json_is_string(nsv) ? json_string_value(nsv)
	    : NULL, NULL);
	if (at == -2)
		return -EINVAL;
	if (at < 0)
		return 0;
	const json_t *o = c->m->v[at].obj;
	json_object_set_new(map, "name", json_string(obj_name(o)));
	if (*obj_namespace(o))
		json_object_set_new(map, "namespace", json_string(obj_namespace(o)));
	return 0;
}

static int
fix_fn(json_t *parent, const char *key, void *arg)
{
	struct refctx *c = arg;
	json_t *v = json_object_get(parent, key);
	size_t i;
	json_t *e;
	int rc = 0;
	if (json_is_string(v))
		return fix_string(c, parent, key, 0, v);
	if (json_is_object(v))
		return fix_mapping(c, v);
	json_array_foreach(v, i, e) {
		if (json_is_string(e))
			rc = fix_string(c, v, NULL, i, e);
		else if (json_is_object(e))
			rc = fix_mapping(c, e);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int
kz_fix_names(struct kresmap *m, char **err)
{
	for (size_t i = 0; i < m->n; i++)
		for (size_t j = 0; j < ARRAY_SIZE(namerefs); j++) {
			if (strcmp(obj_kind(m->v[i].obj), namerefs[j].referrer))
				continue;
			struct refctx c = { m, &m->v[i], &namerefs[j], err };
			int rc = fs_walk(m->v[i].obj, namerefs[j].path, false, fix_fn, &c);
			if (rc < 0)
				return rc;
		}
	return 0;
}

/* ---- images ------------------------------------------------------------ */

static bool
all_chars(const char *s, size_t n, const char *extra)
{
	for (size_t i = 0; i < n; i++)
		if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= 'A' && s[i] <= 'Z') &&
		    !(s[i] >= '0' && s[i] <= '9') && !strchr(extra, s[i]))
			return false;
	return true;
}

/* kustomize's IsImageMatched: value is name, then an optional ":tag",
 * then an optional "@algo:hex". */
static bool
image_matches(const char *value, const char *name)
{
	size_t n = strlen(name);
	if (strncmp(value, name, n))
		return false;
	const char *rest = value + n;
	if (*rest == ':') {
		size_t t = strcspn(rest + 1, "@");
		if (!all_chars(rest + 1, t, "_.{}-"))
			return false;
		rest += 1 + t;
	}
	if (!*rest)
		return true;
	if (*rest != '@')
		return false;
	const char *colon = strchr(rest, ':');
	return colon && colon > rest + 1 && all_chars(rest + 1, (size_t)(colon - rest - 1), ".+_-") &&
	    all_chars(colon + 1, strlen(colon + 1), "_.{}-");
}

/* kustomize's image.Split: name, tag and digest (the search for ':' and
 * '@' starts at the first '/', so a registry port is part of the name). */
static void
image_split(const char *img, char **name, char **tag, char **digest)
{
	const char *slash = strchr(img, '/');
	const char *search = slash && slash > img ? slash : img;
	const char *at = strchr(search, '@'), *colon = strchr(search, ':');
	*tag = xstrdup("");
	*digest = xstrdup("");
	if (!at && !colon) {
		*name = xstrdup(img);
		return;
	}
	if (at && (!colon || at < colon)) {
		*name = xstrndup(img, (size_t)(at - img));
		free(*digest);
		*digest = xstrdup(at + 1);
		return;
	}
	*name = xstrndup(img, (size_t)(colon - img));
	free(*tag);
	*tag = at ? xstrndup(colon + 1, (size_t)(at - colon - 1)) : xstrdup(colon + 1);
	if (at) {
		free(*digest);
		*digest = xstrdup(at + 1);
	}
}

char *
kz_image_set(const char *value, const json_t *entry)
{
	const char *match = obj_str(entry, "name");
	if (!match[0] || !image_matches(value, match))
		return NULL;
	char *name, *tag, *digest;
	image_split(value, &name, &tag, &digest);
	const char *nn = obj_str(entry, "newName"), *nt = obj_str(entry, "newTag");
	const char *nd = obj_str(entry, "digest");
	char numtag[64];
	json_t *t = json_object_get(entry, "newTag");
	if (json_is_number(t)) {
		char *s = json_dumps(t, JSON_ENCODE_ANY);
		snprintf(numtag, sizeof numtag, "%s", s);
		free(s);
		nt = numtag;
	}
	const char *use_tag = tag, *use_digest = digest, *suffix = obj_str(entry, "tagSuffix");
	char *suffixed = NULL;
	if (nt[0] || nd[0]) {
		use_tag = nt;
		use_digest = nd;
	} else if (suffix[0]) {
		use_tag = suffixed = xasprintf("%s%s", tag, suffix);
		use_digest = "";
	}
	char *out = xasprintf("%s%s%s%s%s", nn[0] ? nn : name, use_tag[0] ? ":" : "", use_tag,
	    use_digest[0] ? "@" : "", use_digest);
	free(suffixed);
	free(name);
	free(tag);
	free(digest);
	return out;
}
