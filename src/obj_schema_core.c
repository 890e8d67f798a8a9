/* obj_schema_core.c — schemas, semantic checks and defaults of the core v1
 * kinds (Namespace, ConfigMap, Secret, Pod, Service, Endpoints, Event,
 * PersistentVolumeClaim) and
 * the PodSpec / PodTemplateSpec shapes the apps kinds reuse. The table of
 * kinds (obj_kind.c) points here; the engine is obj_schema.c. */
#include "obj_schema.h"

#include <stdlib.h>
#include <string.h>

/* ---- shared checks --------------------------------------------------- */

static void
check_range(const json_t *v, const char *path, struct errlist *errs,
    json_int_t lo, json_int_t hi, const char *what)
{
	json_int_t x = json_integer_value(v);
	if (x > INT32_MAX)	/* Kubernetes' int32 fields cannot even decode it */
		schema_err_invalid(errs, path, v, "must be less than or equal to %d "
		    "(a 32-bit integer)", INT32_MAX);
	else if (x < lo || x > hi)
		schema_err_invalid(errs, path, v, "%s", what);
}

static void
check_port(const json_t *v, const char *path, struct errlist *errs)
{
	check_range(v, path, errs, 1, 65535, "must be between 1 and 65535, inclusive");
}

static void
check_nonneg(const json_t *v, const char *path, struct errlist *errs)
{
	check_range(v, path, errs, 0, INT32_MAX, "must be greater than or equal to 0");
}

static void
check_positive(const json_t *v, const char *path, struct errlist *errs)
{
	check_range(v, path, errs, 1, INT32_MAX, "must be greater than or equal to 1");
}

static void
check_node_port(const json_t *v, const char *path, struct errlist *errs)
{
	check_range(v, path, errs, 30000, 32767,
	    "provided port is not in the valid range. The range of valid ports is 30000-32767");
}

static void
check_dns_label(const json_t *v, const char *path, struct errlist *errs)
{
	const char *msg = name_check_dns1123_label(json_string_value(v));
	if (msg)
		schema_err_invalid(errs, path, v, "%s", msg);
}

static void
check_dns_subdomain(const json_t *v, const char *path, struct errlist *errs)
{
	const char *msg = name_check_dns1123_subdomain(json_string_value(v));
	if (msg)
		schema_err_invalid(errs, path, v, "%s", msg);
}

static void
check_iana_name(const json_t *v, const char *path, struct errlist *errs)
{
	const char *msg = name_check_iana_svc(json_string_value(v));
	if (msg)
		schema_err_invalid(errs, path, v, "%s", msg);
}

/* A port given as a number (1-65535) or a named container port. */
static void
check_port_or_name(const json_t *v, const char *path, struct errlist *errs)
{
	if (json_is_integer(v))
		check_port(v, path, errs);
	else
		check_iana_name(v, path, errs);
}

static void
check_not_empty(const json_t *v, const char *path, struct errlist *errs)
{
	if (!*json_string_value(v))
		errlist_add(errs, path, "FieldValueRequired", "required");
}

static void
check_env_name(const json_t *v, const char *path, struct errlist *errs)
{
	const char *s = json_string_value(v);
	bool ok = *s && !(*s >= '0' && *s <= '9');
	for (const char *p = s; ok && *p; p++)
		ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._", *p);
	if (!ok)
		schema_err_invalid(errs, path, v, "a valid environment variable name "
		    "must consist of alphabetic characters, digits, '_', '-', or '.', "
		    "and must not start with a digit (e.g. 'my.env-name', or "
		    "'MY_ENV.NAME', or 'MyEnvName1')");
}

void
check_quantity_map(const json_t *v, const char *path, struct errlist *errs)
{
	const char *k;
	json_t *x;
	double d;
	json_object_foreach((json_t *)v, k, x) {
		if (json_is_number(x) ||
		    (json_is_string(x) && quantity_parse(json_string_value(x), &d) == 0))
			continue;
		char *p = schema_path_key(path, k);
		schema_err_invalid(errs, p, x, "must be a quantity such as '100m', "
		    "'128Mi' or '1.5'");
		free(p);
	}
}

static bool
data_key_ok(const char *k)
{
	if (!*k || strlen(k) > 253 || !strcmp(k, ".") || !strcmp(k, ".."))
		return false;
	for (; *k; k++)
		if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') ||
		    (*k >= '0' && *k <= '9') || strchr("-._", *k)))
			return false;
	return true;
}

static void
check_data_keys(const json_t *v, const char *path, struct errlist *errs)
{
	const char *k;
	json_t *x;
	json_object_foreach((json_t *)v, k, x) {
		if (data_key_ok(k))
			continue;
		char *p = schema_path_key(path, k);
		json_t *key = json_string(k);
		schema_err_invalid(errs, p, key, "a valid config key must consist of "
		    "alphanumeric characters, '-', '_' or '.' (e.g. 'key.name', or "
		    "'KEY_NAME', or 'key-name'), at most 253 characters");
		json_decref(key);
		free(p);
	}
}

static bool
base64_ok(const char *s)
{
	size_t n = strlen(s), pad = 0;
	if (n % 4)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '+' || c == '/';
		if (c == '=' && i >= n - 2)
			pad++;
		else if (!alpha || pad)
			return false;
	}
	return true;
}

static void
check_base64_data(const json_t *v, const char *path, struct errlist *errs)
{
	check_data_keys(v, path, errs);
	const char *k;
	json_t *x;
	json_object_foreach((json_t *)v, k, x) {
		if (!json_is_string(x) || base64_ok(json_string_value(x)))
			continue;
		char *p = schema_path_key(path, k);
		errlist_add(errs, p, "FieldValueInvalid",
		    "Invalid value: <value omitted>: must be base64-encoded");
		free(p);
	}
}

/* Exactly one of the listed members must be present. */
static void
check_one_of(const json_t *v, const char *path, struct errlist *errs,
    const char *const *members, const char *what)
{
	size_t n = 0;
	for (const char *const *m = members; *m; m++)
		n += json_object_get(v, *m) && !json_is_null(json_object_get(v, *m));
	if (n == 1)
		return;
	struct buf b = BUF_INIT;
	for (const char *const *m = members; *m; m++)
		buf_printf(&b, "%s%s", m == members ? "" : ", ", *m);
	errlist_add(errs, path, n ? "FieldValueForbidden" : "FieldValueRequired",
	    n ? "may not specify more than 1 %s (one of %s)" :
	    "must specify a %s (one of %s)", what, b.data);
	buf_free(&b);
}

/* ---- enums ----------------------------------------------------------- */

static const char *const restart_policies[] = { "Always", "OnFailure", "Never", NULL };
static const char *const container_restart[] = { "Always", NULL };
static const char *const pull_policies[] = { "Always", "IfNotPresent", "Never", NULL };
static const char *const protocols[] = { "TCP", "UDP", "SCTP", NULL };
static const char *const schemes[] = { "HTTP", "HTTPS", NULL };
static const char *const term_msg_policies[] = { "File", "FallbackToLogsOnError", NULL };
static const char *const propagations[] = { "None", "HostToContainer", "Bidirectional", NULL };
static const char *const dns_policies[] = { "ClusterFirst", "ClusterFirstWithHostNet",
	"Default", "None", NULL };
static const char *const hostpath_types[] = { "", "DirectoryOrCreate", "Directory",
	"FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice", NULL };
static const char *const storage_media[] = { "", "Memory", NULL };
static const char *const storage_media_unsup[] = { "HugePages", NULL };
static const char *const toleration_ops[] = { "Exists", "Equal", NULL };
static const char *const taint_effects[] = { "NoSchedule", "PreferNoSchedule", "NoExecute", NULL };
static const char *const service_types[] = { "ClusterIP", "NodePort", NULL };
static const char *const service_types_unsup[] = { "LoadBalancer", "ExternalName", NULL };
static const char *const affinities[] = { "None", "ClientIP", NULL };
static const char *const traffic_policies[] = { "Cluster", "Local", NULL };
static const char *const ip_families[] = { "IPv4", "IPv6", NULL };
static const char *const ip_family_policies[] = { "SingleStack", "PreferDualStack",
	"RequireDualStack", NULL };
static const char *const event_types[] = { "Normal", "Warning", NULL };

/* ---- containers ------------------------------------------------------ */

static const struct schema_field exec_action[] = {
	F_ARR("command", ST_STRING),
	F_END
};

static const struct schema_field http_header[] = {
	F_STR("name", .flags = SF_REQUIRED),
	F_STR("value", .flags = SF_REQUIRED),
	F_END
};

static const struct schema_field http_get_action[] = {
	F_STR("path"),
	F_IOS("port", .flags = SF_REQUIRED, .check = check_port_or_name),
	F_STR("host"),
	F_STR("scheme", .enums = schemes),
	F_AOBJ("httpHeaders", http_header),
	F_END
};

static const struct schema_field tcp_socket_action[] = {
	F_IOS("port", .flags = SF_REQUIRED, .check = check_port_or_name),
	F_STR("host"),
	F_END
};

static const struct schema_field sleep_action[] = {
	F_INT("seconds", .flags = SF_REQUIRED, .check = check_nonneg),
	F_END
};

static void
check_probe(const json_t *v, const char *path, struct errlist *errs)
{
	static const char *const handlers[] = { "exec", "httpGet", "tcpSocket", "grpc", NULL };
	check_one_of(v, path, errs, handlers, "handler type");
}

static void
check_lifecycle_handler(const json_t *v, const char *path, struct errlist *errs)
{
	static const char *const handlers[] = { "exec", "httpGet", "tcpSocket", "sleep", NULL };
	check_one_of(v, path, errs, handlers, "handler type");
}

static const struct schema_field probe[] = {
	F_OBJ("exec", exec_action),
	F_OBJ("httpGet", http_get_action),
	F_OBJ("tcpSocket", tcp_socket_action),
	F_UNSUP("grpc"),
	F_INT("initialDelaySeconds", .check = check_nonneg),
	F_INT("periodSeconds", .check = check_positive),
	F_INT("timeoutSeconds", .check = check_positive),
	F_INT("successThreshold", .check = check_positive),
	F_INT("failureThreshold", .check = check_positive),
	F_INT("terminationGracePeriodSeconds", .check = check_positive),
	F_END
};

static const struct schema_field lifecycle_handler[] = {
	F_OBJ("exec", exec_action),
	F_OBJ("httpGet", http_get_action),
	F_OBJ("tcpSocket", tcp_socket_action),
	F_OBJ("sleep", sleep_action),
	F_END
};

static const struct schema_field lifecycle[] = {
	F_OBJ("postStart", lifecycle_handler, .check = check_lifecycle_handler),
	F_OBJ("preStop", lifecycle_handler, .check = check_lifecycle_handler),
	F_UNSUP("stopSignal"),
	F_END
};

static const struct schema_field container_port[] = {
	F_STR("name", .check = check_iana_name),
	F_INT("containerPort", .flags = SF_REQUIRED, .check = check_port),
	F_STR("protocol", .enums = protocols),
	F_INT("hostPort", .check = check_port),
	F_STR("hostIP"),
	F_END
};

static const struct schema_field object_field_selector[] = {
	F_STR("fieldPath", .flags = SF_REQUIRED),
	F_STR("apiVersion"),
	F_END
};

static const struct schema_field resource_field_selector[] = {
	F_STR("containerName"),
	F_STR("resource", .flags = SF_REQUIRED),
	F_QTY("divisor"),
	F_END
};

static const struct schema_field key_selector[] = {
	F_STR("name"),
	F_STR("key", .flags = SF_REQUIRED),
	F_BOOL("optional"),
	F_END
};

static void
check_env_source(const json_t *v, const char *path, struct errlist *errs)
{
	static const char *const sources[] = { "fieldRef", "resourceFieldRef",
		"configMapKeyRef", "secretKeyRef", "fileKeyRef", NULL };
	check_one_of(v, path, errs, sources, "source");
}

static const struct schema_field env_var_source[] = {
	F_OBJ("fieldRef", object_field_selector),
	F_OBJ("resourceFieldRef", resource_field_selector),
	F_OBJ("configMapKeyRef", key_selector),
	F_OBJ("secretKeyRef", key_selector),
	F_UNSUP("fileKeyRef"),
	F_END
};

static void
check_env_var(const json_t *v, const char *path, struct errlist *errs)
{
	const char *value = json_string_value(json_object_get(v, "value"));
	if (value && *value && json_is_object(json_object_get(v, "valueFrom"))) {
		char *p = schema_path_key(path, "valueFrom");
		errlist_add(errs, p, "FieldValueInvalid",
		    "may not be specified when `value` is not empty");
		free(p);
	}
}

static const struct schema_field env_var[] = {
	F_STR("name", .flags = SF_REQUIRED, .check = check_env_name),
	F_STR("value"),
	F_OBJ("valueFrom", env_var_source, .check = check_env_source),
	F_END
};

static const struct schema_field local_ref_optional[] = {
	F_STR("name"),
	F_BOOL("optional"),
	F_END
};

static const struct schema_field env_from_source[] = {
	F_STR("prefix"),
	F_OBJ("configMapRef", local_ref_optional),
	F_OBJ("secretRef", local_ref_optional),
	F_END
};

static int
quantity_value(const json_t *v, double *out)
{
	if (json_is_number(v)) {
		*out = json_number_value(v);
		return 0;
	}
	return json_is_string(v) ? quantity_parse(json_string_value(v), out) : -1;
}

/* limits >= requests for every resource named in both. */
static void
check_resources(const json_t *v, const char *path, struct errlist *errs)
{
	const json_t *limits = json_object_get(v, "limits");
	const char *k;
	json_t *req;
	json_object_foreach(json_object_get(v, "requests"), k, req) {
		json_t *lim = json_object_get(limits, k);
		double r, l;
		if (!lim || quantity_value(req, &r) || quantity_value(lim, &l) || r <= l)
			continue;
		char *rp = schema_path_key(path, "requests");
		char *p = schema_path_key(rp, k);
		char *ls = json_dumps(lim, JSON_ENCODE_ANY);
		schema_err_invalid(errs, p, req, "must be less than or equal to %s limit of %s",
		    k, ls ? ls : "?");
		free(ls);
		free(p);
		free(rp);
	}
}

static const struct schema_field resources[] = {
	F_MAPA("limits", .check = check_quantity_map),
	F_MAPA("requests", .check = check_quantity_map),
	F_UNSUP("claims"),
	F_END
};

static const struct schema_field volume_mount[] = {
	F_STR("name", .flags = SF_REQUIRED),
	F_STR("mountPath", .flags = SF_REQUIRED, .check = check_not_empty),
	F_BOOL("readOnly"),
	F_STR("subPath"),
	F_STR("subPathExpr"),
	F_STR("mountPropagation", .enums = propagations),
	F_UNSUP("recursiveReadOnly"),
	F_END
};

static const struct schema_field capabilities[] = {
	F_ARR("add", ST_STRING),
	F_ARR("drop", ST_STRING),
	F_END
};

/* Upstream's security fields; which runtime enforces which is the table in
 * node_secctx.c, applied at admission (api_policy.c). */
static const char *const profile_types[] = { "RuntimeDefault", "Unconfined", "Localhost",
	NULL };
static const char *const proc_mounts[] = { "Default", "Unmasked", NULL };
static const char *const fs_group_policies[] = { "OnRootMismatch", "Always", NULL };
static const char *const group_policies[] = { "Merge", "Strict", NULL };
static const char *const selinux_policies[] = { "Recursive", "MountOption", NULL };

static const struct schema_field profile[] = {
	F_STR("type", .flags = SF_REQUIRED, .enums = profile_types),
	F_STR("localhostProfile"),
	F_END
};

static const struct schema_field selinux_options[] = {
	F_STR("user"), F_STR("role"), F_STR("type"), F_STR("level"),
	F_END
};

static const struct schema_field windows_options[] = {
	F_STR("gmsaCredentialSpecName"), F_STR("gmsaCredentialSpec"), F_STR("runAsUserName"),
	F_BOOL("hostProcess"),
	F_END
};

static const struct schema_field sysctl[] = {
	F_STR("name", .flags = SF_REQUIRED),
	F_STR("value", .flags = SF_REQUIRED),
	F_END
};

static const struct schema_field container_security[] = {
	F_INT("runAsUser", .check = check_nonneg),
	F_INT("runAsGroup", .check = check_nonneg),
	F_BOOL("runAsNonRoot"),
	F_BOOL("readOnlyRootFilesystem"),
	F_BOOL("allowPrivilegeEscalation"),
	F_BOOL("privileged"),
	F_OBJ("capabilities", capabilities),
	F_OBJ("seLinuxOptions", selinux_options),
	F_OBJ("seccompProfile", profile),
	F_OBJ("appArmorProfile", profile),
	F_OBJ("windowsOptions", windows_options),
	F_STR("procMount", .enums = proc_mounts),
	F_END
};

static const struct schema_field container[] = {
	F_STR("name", .flags = SF_REQUIRED, .check = check_dns_label),
	F_STR("image", .flags = SF_REQUIRED, .check = check_not_empty),
	F_ARR("command", ST_STRING),
	F_ARR("args", ST_STRING),
	F_STR("workingDir"),
	F_AOBJ("ports", container_port),
	F_AOBJ("env", env_var, .check = check_env_var),
	F_AOBJ("envFrom", env_from_source),
	F_OBJ("resources", resources, .check = check_resources),
	F_AOBJ("volumeMounts", volume_mount),
	F_OBJ("livenessProbe", probe, .check = check_probe),
	F_OBJ("readinessProbe", probe, .check = check_probe),
	F_OBJ("startupProbe", probe, .check = check_probe),
	F_OBJ("lifecycle", lifecycle),
	F_STR("terminationMessagePath"),
	F_STR("terminationMessagePolicy", .enums = term_msg_policies),
	F_STR("imagePullPolicy", .enums = pull_policies),
	F_OBJ("securityContext", container_security),
	F_STR("restartPolicy", .enums = container_restart),
	F_BOOL("stdin"),
	F_BOOL("stdinOnce"),
	F_BOOL("tty"),
	F_UNSUP("resizePolicy"),
	F_UNSUP("restartPolicyRules"),
	F_UNSUP("volumeDevices"),
	F_END
};

/* ---- volumes --------------------------------------------------------- */

static const struct schema_field key_to_path[] = {
	F_STR("key", .flags = SF_REQUIRED),
	F_STR("path", .flags = SF_REQUIRED, .check = check_not_empty),
	F_INT("mode"),
	F_END
};

static const struct schema_field empty_dir[] = {
	F_STR("medium", .enums = storage_media, .unsupported = storage_media_unsup),
	F_QTY("sizeLimit"),
	F_END
};

static const struct schema_field configmap_volume[] = {
	F_STR("name"),
	F_AOBJ("items", key_to_path),
	F_INT("defaultMode"),
	F_BOOL("optional"),
	F_END
};

static const struct schema_field secret_volume[] = {
	F_STR("secretName"),
	F_AOBJ("items", key_to_path),
	F_INT("defaultMode"),
	F_BOOL("optional"),
	F_END
};

static const struct schema_field pvc_volume[] = {
	F_STR("claimName", .flags = SF_REQUIRED, .check = check_not_empty),
	F_BOOL("readOnly"),
	F_END
};

static const struct schema_field host_path_volume[] = {
	F_STR("path", .flags = SF_REQUIRED, .check = check_not_empty),
	F_STR("type", .enums = hostpath_types),
	F_END
};

static const struct schema_field downward_item[] = {
	F_STR("path", .flags = SF_REQUIRED, .check = check_not_empty),
	F_OBJ("fieldRef", object_field_selector),
	F_OBJ("resourceFieldRef", resource_field_selector),
	F_INT("mode"),
	F_END
};

static const struct schema_field downward_volume[] = {
	F_AOBJ("items", downward_item),
	F_INT("defaultMode"),
	F_END
};

static const struct schema_field projected_object[] = {
	F_STR("name"),
	F_AOBJ("items", key_to_path),
	F_BOOL("optional"),
	F_END
};

static const struct schema_field projected_downward[] = {
	F_AOBJ("items", downward_item),
	F_END
};

static const struct schema_field projection[] = {
	F_OBJ("configMap", projected_object),
	F_OBJ("secret", projected_object),
	F_OBJ("downwardAPI", projected_downward),
	F_UNSUP("serviceAccountToken"),
	F_UNSUP("clusterTrustBundle"),
	F_END
};

static const struct schema_field projected_volume[] = {
	F_AOBJ("sources", projection),
	F_INT("defaultMode"),
	F_END
};

static const char *const volume_sources[] = { "emptyDir", "configMap", "secret",
	"persistentVolumeClaim", "hostPath", "downwardAPI", "projected", "nfs", "csi",
	"ephemeral", "iscsi", "image", "gitRepo", "cephfs", "rbd", "fc",
	"awsElasticBlockStore", "gcePersistentDisk", "azureDisk", "azureFile", NULL };

static void
check_volume(const json_t *v, const char *path, struct errlist *errs)
{
	check_one_of(v, path, errs, volume_sources, "volume type");
}

static const struct schema_field volume[] = {
	F_STR("name", .flags = SF_REQUIRED, .check = check_dns_label),
	F_OBJ("emptyDir", empty_dir),
	F_OBJ("configMap", configmap_volume),
	F_OBJ("secret", secret_volume),
	F_OBJ("persistentVolumeClaim", pvc_volume),
	F_OBJ("hostPath", host_path_volume),
	F_OBJ("downwardAPI", downward_volume),
	F_OBJ("projected", projected_volume),
	F_UNSUP("nfs"), F_UNSUP("csi"), F_UNSUP("ephemeral"),
	F_UNSUP("iscsi"), F_UNSUP("image"), F_UNSUP("gitRepo"), F_UNSUP("cephfs"),
	F_UNSUP("rbd"), F_UNSUP("fc"), F_UNSUP("awsElasticBlockStore"),
	F_UNSUP("gcePersistentDisk"), F_UNSUP("azureDisk"), F_UNSUP("azureFile"),
	F_END
};

/* ---- PodSpec --------------------------------------------------------- */

static const struct schema_field pod_security[] = {
	F_INT("runAsUser", .check = check_nonneg),
	F_INT("runAsGroup", .check = check_nonneg),
	F_BOOL("runAsNonRoot"),
	F_INT("fsGroup", .check = check_nonneg),
	F_ARR("supplementalGroups", ST_INT, .check = check_nonneg),
	F_AOBJ("sysctls", sysctl),
	F_STR("fsGroupChangePolicy", .enums = fs_group_policies),
	F_OBJ("seLinuxOptions", selinux_options),
	F_OBJ("seccompProfile", profile),
	F_OBJ("appArmorProfile", profile),
	F_OBJ("windowsOptions", windows_options),
	F_STR("supplementalGroupsPolicy", .enums = group_policies),
	F_STR("seLinuxChangePolicy", .enums = selinux_policies),
	F_END
};

static const struct schema_field local_ref[] = {
	F_STR("name"),
	F_END
};

static const struct schema_field toleration[] = {
	F_STR("key"),
	F_STR("operator", .enums = toleration_ops),
	F_STR("value"),
	F_STR("effect", .enums = taint_effects),
	F_INT("tolerationSeconds"),
	F_END
};

/* Names unique across containers and initContainers; volumeMounts name a
 * declared volume; regular init containers have no probes or lifecycle. */
static void
check_containers(const json_t *spec, const char *path, const char *list,
    json_t *seen, const json_t *volumes, struct errlist *errs)
{
	size_t i;
	json_t *c;
	char *lp = schema_path_key(path, list);
	json_array_foreach(json_object_get(spec, list), i, c) {
		char *cp = schema_path_index(lp, i);
		const char *name = json_string_value(json_object_get(c, "name"));
		if (name && json_object_get(seen, name)) {
			char *np = schema_path_key(cp, "name");
			errlist_add(errs, np, "FieldValueDuplicate",
			    "Duplicate value: \"%s\"", name);
			free(np);
		} else if (name) {
			json_object_set_new(seen, name, json_true());
		}
		size_t j;
		json_t *m;
		json_array_foreach(json_object_get(c, "volumeMounts"), j, m) {
			const char *vn = json_string_value(json_object_get(m, "name"));
			if (!vn || json_object_get(volumes, vn))
				continue;
			char *mp = xasprintf("%s.volumeMounts[%zu].name", cp, j);
			errlist_add(errs, mp, "FieldValueNotFound", "Not found: \"%s\": "
			    "no volume of that name in spec.volumes", vn);
			free(mp);
		}
		bool sidecar = !strcmp(list, "initContainers") &&
		    json_is_string(json_object_get(c, "restartPolicy"));
		static const char *const sidecar_only[] = { "livenessProbe",
			"readinessProbe", "startupProbe", "lifecycle", NULL };
		for (const char *const *f = sidecar_only; !strcmp(list, "initContainers") &&
		    !sidecar && *f; f++) {
			if (!json_object_get(c, *f))
				continue;
			char *fp = schema_path_key(cp, *f);
			errlist_add(errs, fp, "FieldValueForbidden",
			    "may not be set for init containers without restartPolicy=Always");
			free(fp);
		}
		if (!strcmp(list, "containers") && json_object_get(c, "restartPolicy")) {
			char *fp = schema_path_key(cp, "restartPolicy");
			errlist_add(errs, fp, "FieldValueForbidden",
			    "may not be set for non-init containers");
			free(fp);
		}
		free(cp);
	}
	free(lp);
}

static void
check_pod_spec(const json_t *spec, const char *path, struct errlist *errs)
{
	json_t *volumes = json_object();
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(spec, "volumes"), i, v) {
		const char *name = json_string_value(json_object_get(v, "name"));
		if (!name)
			continue;
		if (json_object_get(volumes, name)) {
			char *p = xasprintf("%s.volumes[%zu].name", path, i);
			errlist_add(errs, p, "FieldValueDuplicate", "Duplicate value: \"%s\"", name);
			free(p);
		}
		json_object_set_new(volumes, name, json_true());
	}
	const json_t *cs = json_object_get(spec, "containers");
	if (json_is_array(cs) && json_array_size(cs) == 0) {
		char *p = schema_path_key(path, "containers");
		errlist_add(errs, p, "FieldValueRequired", "required: at least one container");
		free(p);
	}
	json_t *seen = json_object();
	check_containers(spec, path, "initContainers", seen, volumes, errs);
	check_containers(spec, path, "containers", seen, volumes, errs);
	json_decref(seen);
	json_decref(volumes);
}

const struct schema_field schema_pod_spec[] = {
	F_AOBJ("volumes", volume, .check = check_volume),
	F_AOBJ("initContainers", container),
	F_AOBJ("containers", container, .flags = SF_REQUIRED),
	F_STR("restartPolicy", .enums = restart_policies),
	F_INT("terminationGracePeriodSeconds", .check = check_nonneg),
	F_INT("activeDeadlineSeconds", .check = check_positive),
	F_STR("dnsPolicy", .enums = dns_policies),
	F_MAPS("nodeSelector"),
	F_STR("serviceAccountName", .check = check_dns_subdomain),
	F_STR("serviceAccount"),
	F_BOOL("automountServiceAccountToken"),
	F_STR("nodeName"),
	F_OBJ("securityContext", pod_security),
	F_AOBJ("imagePullSecrets", local_ref),
	F_STR("hostname", .check = check_dns_label),
	F_STR("subdomain", .check = check_dns_label),
	F_STR("schedulerName"),
	F_AOBJ("tolerations", toleration),
	F_STR("priorityClassName"),
	F_INT("priority"),
	F_STR("runtimeClassName", .check = check_dns_subdomain),
	F_BOOL("enableServiceLinks"),
	F_UNSUP("ephemeralContainers"),
	F_UNSUP("hostNetwork"),
	F_BOOL("hostPID"),
	F_BOOL("hostIPC"),
	F_BOOL("shareProcessNamespace"),
	F_UNSUP("affinity"),
	F_UNSUP("hostAliases"),
	F_UNSUP("dnsConfig"),
	F_UNSUP("readinessGates"),
	F_UNSUP("preemptionPolicy"),
	F_UNSUP("overhead"),
	F_UNSUP("topologySpreadConstraints"),
	F_UNSUP("setHostnameAsFQDN"),
	F_UNSUP("os"),
	F_BOOL("hostUsers"),
	F_UNSUP("schedulingGates"),
	F_UNSUP("resourceClaims"),
	F_UNSUP("resources"),
	F_UNSUP("hostnameOverride"),
	F_END
};

const struct schema_field schema_pod_template[] = {
	F_OBJ("metadata", schema_object_meta),
	F_OBJ("spec", schema_pod_spec, .flags = SF_REQUIRED, .check = check_pod_spec),
	F_END
};

/* ---- the kinds ------------------------------------------------------- */

const struct schema_field schema_pod[] = {
	F_OBJ("spec", schema_pod_spec, .flags = SF_REQUIRED, .check = check_pod_spec),
	F_MAPA("status"),
	F_END
};

static const struct schema_field namespace_spec[] = {
	F_ARR("finalizers", ST_STRING),
	F_END
};

const struct schema_field schema_namespace[] = {
	F_OBJ("spec", namespace_spec),
	F_MAPA("status"),
	F_END
};

const struct schema_field schema_configmap[] = {
	F_MAPS("data", .check = check_data_keys),
	F_MAPS("binaryData", .check = check_base64_data),
	F_BOOL("immutable"),
	F_END
};

const struct schema_field schema_secret[] = {
	F_MAPS("data", .check = check_base64_data),
	F_MAPS("stringData", .check = check_data_keys),
	F_STR("type"),
	F_BOOL("immutable"),
	F_END
};

static const struct schema_field service_port[] = {
	F_STR("name", .check = check_dns_label),
	F_STR("protocol", .enums = protocols),
	F_INT("port", .flags = SF_REQUIRED, .check = check_port),
	F_IOS("targetPort", .check = check_port_or_name),
	F_INT("nodePort", .check = check_node_port),
	F_STR("appProtocol"),
	F_END
};

static const struct schema_field client_ip_config[] = {
	F_INT("timeoutSeconds", .check = check_positive),
	F_END
};

static const struct schema_field session_affinity_config[] = {
	F_OBJ("clientIP", client_ip_config),
	F_END
};

static const struct schema_field service_spec[] = {
	F_STR("type", .enums = service_types, .unsupported = service_types_unsup),
	F_MAPS("selector"),
	F_AOBJ("ports", service_port),
	F_STR("clusterIP"),
	F_ARR("clusterIPs", ST_STRING),
	F_STR("sessionAffinity", .enums = affinities),
	F_OBJ("sessionAffinityConfig", session_affinity_config),
	F_BOOL("publishNotReadyAddresses"),
	F_STR("externalTrafficPolicy", .enums = traffic_policies),
	F_STR("internalTrafficPolicy", .enums = traffic_policies),
	F_ARR("ipFamilies", ST_STRING, .enums = ip_families),
	F_STR("ipFamilyPolicy", .enums = ip_family_policies),
	F_UNSUP("externalIPs"),
	F_UNSUP("externalName"),
	F_UNSUP("loadBalancerIP"),
	F_UNSUP("loadBalancerSourceRanges"),
	F_UNSUP("loadBalancerClass"),
	F_UNSUP("allocateLoadBalancerNodePorts"),
	F_UNSUP("healthCheckNodePort"),
	F_UNSUP("trafficDistribution"),
	F_END
};

const struct schema_field schema_service[] = {
	F_OBJ("spec", service_spec),
	F_MAPA("status"),
	F_END
};

static const struct schema_field object_reference[] = {
	F_STR("kind"),
	F_STR("namespace"),
	F_STR("name"),
	F_STR("uid"),
	F_STR("apiVersion"),
	F_STR("resourceVersion"),
	F_STR("fieldPath"),
	F_END
};

static const struct schema_field endpoint_address[] = {
	F_STR("ip", .flags = SF_REQUIRED, .check = check_not_empty),
	F_STR("hostname"),
	F_STR("nodeName"),
	F_OBJ("targetRef", object_reference),
	F_END
};

static const struct schema_field endpoint_port[] = {
	F_STR("name"),
	F_INT("port", .flags = SF_REQUIRED, .check = check_port),
	F_STR("protocol", .enums = protocols),
	F_STR("appProtocol"),
	F_END
};

static const struct schema_field endpoint_subset[] = {
	F_AOBJ("addresses", endpoint_address),
	F_AOBJ("notReadyAddresses", endpoint_address),
	F_AOBJ("ports", endpoint_port),
	F_END
};

const struct schema_field schema_endpoints[] = {
	F_AOBJ("subsets", endpoint_subset),
	F_END
};

static const struct schema_field event_source[] = {
	F_STR("component"),
	F_STR("host"),
	F_END
};

static const struct schema_field event_series[] = {
	F_INT("count"),
	F_STR("lastObservedTime"),
	F_END
};

const struct schema_field schema_event[] = {
	F_OBJ("involvedObject", object_reference, .flags = SF_REQUIRED),
	F_STR("reason"),
	F_STR("message"),
	F_OBJ("source", event_source),
	F_STR("firstTimestamp"),
	F_STR("lastTimestamp"),
	F_INT("count"),
	F_STR("type", .enums = event_types),
	F_STR("eventTime"),
	F_OBJ("series", event_series),
	F_STR("action"),
	F_OBJ("related", object_reference),
	F_STR("reportingComponent"),
	F_STR("reportingInstance"),
	F_END
};

/* ---- PersistentVolumeClaim (v1) -------------------------------------- */

static const char *const pvc_access_modes[] = { "ReadWriteOnce", "ReadOnlyMany",
	"ReadWriteMany", "ReadWriteOncePod", NULL };
static const char *const pvc_volume_modes[] = { "Filesystem", NULL };
static const char *const pvc_volume_modes_unsup[] = { "Block", NULL };

static const struct schema_field pvc_resources[] = {
	F_MAPA("requests", .check = check_quantity_map),
	F_MAPA("limits", .check = check_quantity_map),
	F_END
};

static const struct schema_field pvc_spec[] = {
	F_ARR("accessModes", ST_STRING, .enums = pvc_access_modes),
	F_OBJ("resources", pvc_resources),
	F_STR("storageClassName"),
	F_STR("volumeMode", .enums = pvc_volume_modes, .unsupported = pvc_volume_modes_unsup),
	F_STR("volumeName"),
	F_UNSUP("selector"),
	F_UNSUP("dataSource"),
	F_UNSUP("dataSourceRef"),
	F_UNSUP("volumeAttributesClassName"),
	F_END
};

const struct schema_field schema_pvc[] = {
	F_OBJ("spec", pvc_spec, .flags = SF_REQUIRED),
	F_MAPA("status"),
	F_END
};

/* A volumeClaimTemplate of a StatefulSet: a claim without its own status. */
const struct schema_field schema_pvc_template[] = {
	F_STR("apiVersion"),
	F_STR("kind"),
	F_OBJ("metadata", schema_object_meta),
	F_OBJ("spec", pvc_spec, .flags = SF_REQUIRED),
	F_MAPA("status"),
	F_END
};

void
core_pvc_spec_check(const json_t *spec, const char *path, struct errlist *errs)
{
	char *p = schema_path_key(path, "accessModes");
	if (json_array_size(json_object_get(spec, "accessModes")) == 0)
		errlist_add(errs, p, "FieldValueRequired",
		    "Required value: at least 1 access mode is required");
	free(p);
	const json_t *storage = obj_get_path(spec, "resources.requests.storage");
	p = xasprintf("%s.resources[storage]", path);
	if (!storage)
		errlist_add(errs, p, "FieldValueRequired", "Required value");
	free(p);
}

void
core_pvc_validate(const json_t *obj, struct errlist *errs)
{
	core_pvc_spec_check(json_object_get(obj, "spec"), "spec", errs);
}

/* Kubernetes: the spec is immutable once created, but for resources
 * (expansion) and volumeName set by the binder. */
void
core_pvc_update(const json_t *old, const json_t *obj, struct errlist *errs)
{
	json_t *a = json_deep_copy(json_object_get(old, "spec"));
	json_t *b = json_deep_copy(json_object_get(obj, "spec"));
	json_t *pair[2] = { a, b };
	for (int i = 0; i < 2; i++) {
		core_pvc_spec_defaults(pair[i]);	/* the update is defaulted later */
		json_object_del(pair[i], "resources");
		json_object_del(pair[i], "volumeName");
	}
	const char *va = json_string_value(obj_get_path(old, "spec.volumeName"));
	const char *vb = json_string_value(obj_get_path(obj, "spec.volumeName"));
	if (!json_equal(a, b) || (va && *va && (!vb || strcmp(va, vb))))
		errlist_add(errs, "spec", "FieldValueForbidden", "spec is immutable after "
		    "creation except resources.requests for bound claims");
	json_decref(a);
	json_decref(b);
}

void
core_pvc_spec_defaults(json_t *spec)
{
	if (json_is_object(spec))
		schema_default_str(spec, "volumeMode", "Filesystem");
}

void
core_pvc_defaults(json_t *obj)
{
	core_pvc_spec_defaults(json_object_get(obj, "spec"));
	json_t *st = json_object_get(obj, "status");
	if (!json_is_object(st)) {
		st = json_object();
		json_object_set_new(obj, "status", st);
	}
	schema_default_str(st, "phase", "Pending");
}

/* ---- Node (cluster-scoped; the node agent registers its own) ------------ */

static const struct schema_field node_taint[] = {
	F_STR("key", .flags = SF_REQUIRED, .check = check_not_empty),
	F_STR("value"),
	F_STR("effect", .flags = SF_REQUIRED, .enums = taint_effects),
	F_STR("timeAdded"),
	F_END
};

static const struct schema_field node_spec[] = {
	F_STR("podCIDR"),
	F_ARR("podCIDRs", ST_STRING),
	F_STR("providerID"),
	F_BOOL("unschedulable"),
	F_AOBJ("taints", node_taint),
	F_UNSUP("configSource"),
	F_UNSUP("externalID"),
	F_END
};

const struct schema_field schema_node[] = {
	F_OBJ("spec", node_spec),
	F_MAPA("status"),
	F_END
};

/* ---- semantic checks ------------------------------------------------- */

static void
check_service_port(const json_t *spec, const json_t *port, size_t i, size_t nports,
    json_t *names, struct errlist *errs)
{
	char *pp = xasprintf("spec.ports[%zu]", i);
	const char *name = json_string_value(json_object_get(port, "name"));
	const char *type = json_string_value(json_object_get(spec, "type"));
	char *np = schema_path_key(pp, "name");
	if (nports > 1 && (!name || !*name))
		errlist_add(errs, np, "FieldValueRequired", "required: when there is more than one port");
	else if (name && json_object_get(names, name))
		errlist_add(errs, np, "FieldValueDuplicate", "Duplicate value: \"%s\"", name);
	else if (name)
		json_object_set_new(names, name, json_true());
	free(np);
	json_t *node_port = json_object_get(port, "nodePort");
	if (node_port && (!type || strcmp(type, "NodePort"))) {
		char *p = schema_path_key(pp, "nodePort");
		errlist_add(errs, p, "FieldValueForbidden", "may not be used when `type` is '%s'",
		    type ? type : "ClusterIP");
		free(p);
	}
	free(pp);
}

void
core_service_validate(const json_t *obj, struct errlist *errs)
{
	const json_t *spec = json_object_get(obj, "spec");
	const json_t *ports = json_object_get(spec, "ports");
	const char *cip = json_string_value(json_object_get(spec, "clusterIP"));
	const char *type = json_string_value(json_object_get(spec, "type"));
	bool headless = cip && !strcmp(cip, "None");
	if (json_array_size(ports) == 0 && !headless)
		errlist_add(errs, "spec.ports", "FieldValueRequired", "required");
	if (headless && type && !strcmp(type, "NodePort"))
		errlist_add(errs, "spec.clusterIP", "FieldValueInvalid",
		    "Invalid value: \"None\": may not be set to 'None' for NodePort services");
	json_t *names = json_object();
	size_t i;
	json_t *p;
	json_array_foreach(ports, i, p)
		check_service_port(spec, p, i, json_array_size(ports), names, errs);
	json_decref(names);
	const json_t *sel = json_object_get(spec, "selector");
	if (sel) {
		/* selector values are label values */
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)sel, k, v) {
			char *sp = schema_path_key("spec.selector", k);
			const char *msg = label_check_key(k);
			if (!msg && json_is_string(v))
				msg = label_check_value(json_string_value(v));
			if (msg)
				schema_err_invalid(errs, sp, v, "%s", msg);
			free(sp);
		}
	}
}

static void
check_no_overlap(const json_t *obj, const char *a, const char *b, struct errlist *errs)
{
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(obj, a), k, v) {
		if (!json_object_get(json_object_get(obj, b), k))
			continue;
		char *p = schema_path_key(b, k);
		errlist_add(errs, p, "FieldValueDuplicate",
		    "Duplicate value: \"%s\": key is also in %s", k, a);
		free(p);
	}
}

void
core_configmap_validate(const json_t *obj, struct errlist *errs)
{
	check_no_overlap(obj, "data", "binaryData", errs);
	size_t total = 0;
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(obj, "data"), k, v)
		total += strlen(k) + json_string_length(v);
	json_object_foreach(json_object_get(obj, "binaryData"), k, v)
		total += strlen(k) + json_string_length(v) * 3 / 4;
	if (total > 1048576)
		errlist_add(errs, "", "FieldValueTooLong",
		    "Too long: must have at most 1048576 bytes (has %zu)", total);
}

void
core_immutable_data_update(const json_t *old, const json_t *obj, struct errlist *errs)
{
	if (!json_is_true(json_object_get(old, "immutable")))
		return;
	static const char *const fields[] = { "data", "binaryData", "stringData", NULL };
	if (!json_is_true(json_object_get(obj, "immutable")))
		errlist_add(errs, "immutable", "FieldValueForbidden",
		    "field is immutable when `immutable` is set");
	for (const char *const *f = fields; *f; f++) {
		const json_t *a = json_object_get(old, *f), *b = json_object_get(obj, *f);
		if (!json_equal((json_t *)a, (json_t *)b) && (a || b))
			errlist_add(errs, *f, "FieldValueForbidden",
			    "field is immutable when `immutable` is set");
	}
}

/* ---- defaults -------------------------------------------------------- */

static void
probe_handler_defaults(json_t *h)
{
	json_t *http = json_object_get(h, "httpGet");
	schema_default_str(http, "path", "/");
	schema_default_str(http, "scheme", "HTTP");
}

static void
probe_defaults(json_t *p)
{
	if (!json_is_object(p))
		return;
	schema_default_int(p, "timeoutSeconds", 1);
	schema_default_int(p, "periodSeconds", 10);
	schema_default_int(p, "successThreshold", 1);
	schema_default_int(p, "failureThreshold", 3);
	probe_handler_defaults(p);
}

/* Always for ":latest" or no tag, IfNotPresent for a tag or digest. */
static const char *
pull_policy_for(const char *image)
{
	if (!image || strchr(image, '@'))
		return image ? "IfNotPresent" : "Always";
	const char *slash = strrchr(image, '/');
	const char *colon = strrchr(slash ? slash : image, ':');
	if (!colon || !strcmp(colon + 1, "latest"))
		return "Always";
	return "IfNotPresent";
}

static void
container_defaults(json_t *c)
{
	if (!json_is_object(c))
		return;
	schema_default_str(c, "imagePullPolicy",
	    pull_policy_for(json_string_value(json_object_get(c, "image"))));
	schema_default_str(c, "terminationMessagePath", "/dev/termination-log");
	schema_default_str(c, "terminationMessagePolicy", "File");
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(c, "ports"), i, x)
		schema_default_str(x, "protocol", "TCP");
	json_array_foreach(json_object_get(c, "env"), i, x)
		schema_default_str(json_object_get(json_object_get(x, "valueFrom"),
		    "fieldRef"), "apiVersion", "v1");
	probe_defaults(json_object_get(c, "livenessProbe"));
	probe_defaults(json_object_get(c, "readinessProbe"));
	probe_defaults(json_object_get(c, "startupProbe"));
	json_t *lc = json_object_get(c, "lifecycle");
	probe_handler_defaults(json_object_get(lc, "postStart"));
	probe_handler_defaults(json_object_get(lc, "preStop"));
}

static void
volume_defaults(json_t *v)
{
	static const char *const with_mode[] = { "configMap", "secret", "downwardAPI",
		"projected", NULL };
	for (const char *const *s = with_mode; *s; s++)
		schema_default_int(json_object_get(v, *s), "defaultMode", 0644);
}

void
pod_spec_defaults(json_t *spec)
{
	if (!json_is_object(spec))
		return;
	schema_default_str(spec, "restartPolicy", "Always");
	schema_default_int(spec, "terminationGracePeriodSeconds", 30);
	schema_default_str(spec, "dnsPolicy", "ClusterFirst");
	schema_default_str(spec, "schedulerName", "default-scheduler");
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(spec, "containers"), i, x)
		container_defaults(x);
	json_array_foreach(json_object_get(spec, "initContainers"), i, x)
		container_defaults(x);
	json_array_foreach(json_object_get(spec, "volumes"), i, x)
		volume_defaults(x);
}

void
pod_template_defaults(json_t *template)
{
	pod_spec_defaults(json_object_get(template, "spec"));
}

/* Go's zero values: JSON null, and a container's resources {} (a struct, not
 * a pointer, so Kubernetes encodes it whether set or not), stand for "not
 * set" and must not tell two templates apart. */
static void
template_drop_zero(json_t *v)
{
	const char *k;
	json_t *x;
	void *tmp;
	size_t i;
	if (json_is_array(v)) {
		json_array_foreach(v, i, x)
			template_drop_zero(x);
		return;
	}
	json_object_foreach_safe(v, tmp, k, x) {
		if (json_is_null(x))
			json_object_del(v, k);
		else
			template_drop_zero(x);
	}
}

static void
containers_drop_empty_resources(json_t *list)
{
	size_t i;
	json_t *c;
	json_array_foreach(list, i, c) {
		json_t *r = json_object_get(c, "resources");
		static const char *const parts[] = { "limits", "requests", "claims" };
		for (size_t j = 0; j < ARRAY_SIZE(parts); j++) {
			json_t *p = json_object_get(r, parts[j]);
			if ((json_is_object(p) && json_object_size(p) == 0) ||
			    (json_is_array(p) && json_array_size(p) == 0))
				json_object_del(r, parts[j]);
		}
		if (json_is_object(r) && json_object_size(r) == 0)
			json_object_del(c, "resources");
	}
}

json_t *
pod_template_canonical(const json_t *template)
{
	json_t *t = json_deep_copy(template);
	if (!t)
		return json_object();
	template_drop_zero(t);
	pod_template_defaults(t);
	json_t *spec = json_object_get(t, "spec");
	containers_drop_empty_resources(json_object_get(spec, "containers"));
	containers_drop_empty_resources(json_object_get(spec, "initContainers"));
	return t;
}

void
core_pod_defaults(json_t *obj)
{
	pod_spec_defaults(json_object_get(obj, "spec"));
}

void
core_namespace_defaults(json_t *obj)
{
	json_t *spec = json_object_get(obj, "spec");
	if (!json_is_object(spec)) {
		spec = json_object();
		json_object_set_new(obj, "spec", spec);
	}
	if (!json_object_get(spec, "finalizers"))
		json_object_set_new(spec, "finalizers", json_pack("[s]", "kubernetes"));
}

void
core_service_defaults(json_t *obj)
{
	json_t *spec = json_object_get(obj, "spec");
	if (!json_is_object(spec))
		return;
	schema_default_str(spec, "type", "ClusterIP");
	schema_default_str(spec, "sessionAffinity", "None");
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(spec, "ports"), i, p) {
		schema_default_str(p, "protocol", "TCP");
		json_t *port = json_object_get(p, "port");
		if (json_is_integer(port) && !json_object_get(p, "targetPort"))
			json_object_set_new(p, "targetPort", json_copy(port));
	}
}

static char *
base64_encode(const char *s, size_t n)
{
	static const char tbl[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = xmalloc((n + 2) / 3 * 4 + 1), *o = out;
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		*o++ = tbl[(v >> 18) & 63];
		*o++ = tbl[(v >> 12) & 63];
		*o++ = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
		*o++ = i + 2 < n ? tbl[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

void
core_secret_defaults(json_t *obj)
{
	schema_default_str(obj, "type", "Opaque");
	json_t *sd = json_object_get(obj, "stringData");
	if (!json_is_object(sd))
		return;
	json_t *data = json_object_get(obj, "data");
	if (!json_is_object(data)) {
		data = json_object();
		json_object_set_new(obj, "data", data);
	}
	const char *k;
	json_t *v;
	json_object_foreach(sd, k, v) {
		if (!json_is_string(v))
			continue;
		char *enc = base64_encode(json_string_value(v), json_string_length(v));
		json_object_set_new(data, k, json_string(enc));
		free(enc);
	}
	json_object_del(obj, "stringData");
}
