/* obj_schema_rbac.c — the identity kinds' schemas and Kubernetes'
 * validation: rbac.authorization.k8s.io/v1 Role, ClusterRole, RoleBinding,
 * ClusterRoleBinding (PolicyRule shape, subjects, immutable roleRef,
 * path-segment names) and v1 ServiceAccount. The table of kinds (obj_kind.c)
 * points here; auth_rbac.c and auth_sa.c use the objects. */
#include "obj_schema.h"

#include <stdlib.h>
#include <string.h>

static const char *const subject_kinds[] = { "User", "Group", "ServiceAccount", NULL };
static const char *const role_kinds[] = { "Role", "ClusterRole", NULL };

static const struct schema_field policy_rule[] = {
	F_ARR("verbs", ST_STRING, .flags = SF_REQUIRED),
	F_ARR("apiGroups", ST_STRING),
	F_ARR("resources", ST_STRING),
	F_ARR("resourceNames", ST_STRING),
	F_ARR("nonResourceURLs", ST_STRING),
	F_END
};

static const struct schema_field aggregation_rule[] = {
	F_AOBJ("clusterRoleSelectors", schema_label_selector),
	F_END
};

static const struct schema_field subject[] = {
	F_STR("kind", .flags = SF_REQUIRED, .enums = subject_kinds),
	F_STR("apiGroup"),
	F_STR("name", .flags = SF_REQUIRED),
	F_STR("namespace"),
	F_END
};

static const struct schema_field role_ref[] = {
	F_STR("apiGroup", .flags = SF_REQUIRED),
	F_STR("kind", .flags = SF_REQUIRED, .enums = role_kinds),
	F_STR("name", .flags = SF_REQUIRED),
	F_END
};

const struct schema_field schema_role[] = {
	F_AOBJ("rules", policy_rule),
	F_END
};

const struct schema_field schema_clusterrole[] = {
	F_AOBJ("rules", policy_rule),
	F_OBJ("aggregationRule", aggregation_rule),
	F_END
};

const struct schema_field schema_rolebinding[] = {
	F_AOBJ("subjects", subject),
	F_OBJ("roleRef", role_ref, .flags = SF_REQUIRED),
	F_END
};

static const struct schema_field local_ref[] = {
	F_STR("name"),
	F_END
};

static const struct schema_field object_ref[] = {
	F_STR("kind"), F_STR("namespace"), F_STR("name"), F_STR("uid"), F_STR("apiVersion"),
	F_STR("resourceVersion"), F_STR("fieldPath"),
	F_END
};

const struct schema_field schema_serviceaccount[] = {
	F_BOOL("automountServiceAccountToken"),
	F_AOBJ("secrets", object_ref),
	F_AOBJ("imagePullSecrets", local_ref),
	F_END
};

/* Kubernetes' ValidateRBACName: any path segment. */
const char *
name_check_path_segment(const char *name)
{
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return "may not be '.' or '..'";
	if (strchr(name, '/') || strchr(name, '%'))
		return "may not contain '/' or '%'";
	return NULL;
}

/* One PolicyRule, as Kubernetes' ValidatePolicyRule. */
static void
rule_check(const json_t *r, const char *path, bool namespaced, struct errlist *errs)
{
	const json_t *urls = json_object_get(r, "nonResourceURLs");
	const json_t *res = json_object_get(r, "resources");
	char *p;

	if (json_array_size(json_object_get(r, "verbs")) == 0) {
		p = schema_path_key(path, "verbs");
		errlist_add(errs, p, "FieldValueRequired", "verbs must contain at least one value");
		free(p);
	}
	if (json_array_size(urls) > 0) {
		p = schema_path_key(path, "nonResourceURLs");
		if (namespaced)
			errlist_add(errs, p, "FieldValueInvalid", "namespaced rules cannot apply "
			    "to non-resource URLs");
		else if (json_array_size(res) > 0 ||
		    json_array_size(json_object_get(r, "apiGroups")) > 0)
			errlist_add(errs, p, "FieldValueInvalid", "rules cannot apply to both "
			    "regular resources and non-resource URLs");
		free(p);
		return;
	}
	if (json_array_size(json_object_get(r, "apiGroups")) == 0) {
		p = schema_path_key(path, "apiGroups");
		errlist_add(errs, p, "FieldValueRequired", "resource rules must supply at least "
		    "one api group");
		free(p);
	}
	if (json_array_size(res) == 0) {
		p = schema_path_key(path, "resources");
		errlist_add(errs, p, "FieldValueRequired", "resource rules must supply at least "
		    "one resource");
		free(p);
	}
}

static void
rules_check(const json_t *obj, bool namespaced, struct errlist *errs)
{
	size_t i;
	const json_t *r;
	json_array_foreach(json_object_get(obj, "rules"), i, r) {
		char *p = schema_path_index("rules", i);
		rule_check(r, p, namespaced, errs);
		free(p);
	}
}

void
rbac_role_validate(const json_t *obj, struct errlist *errs)
{
	rules_check(obj, true, errs);
}

void
rbac_clusterrole_validate(const json_t *obj, struct errlist *errs)
{
	rules_check(obj, false, errs);
}

static void
subjects_check(const json_t *obj, bool cluster, struct errlist *errs)
{
	size_t i;
	const json_t *s;
	json_array_foreach(json_object_get(obj, "subjects"), i, s) {
		const char *kind = json_string_value(json_object_get(s, "kind"));
		const char *group = json_string_value(json_object_get(s, "apiGroup"));
		const char *ns = json_string_value(json_object_get(s, "namespace"));
		char *p = schema_path_index("subjects", i), *f;
		bool sa = kind && strcmp(kind, "ServiceAccount") == 0;
		if (sa && group && *group) {
			f = schema_path_key(p, "apiGroup");
			errlist_add(errs, f, "FieldValueNotSupported", "supported values: \"\"");
			free(f);
		} else if (!sa && kind && group && strcmp(group, "rbac.authorization.k8s.io")) {
			f = schema_path_key(p, "apiGroup");
			errlist_add(errs, f, "FieldValueNotSupported", "supported values: "
			    "\"rbac.authorization.k8s.io\"");
			free(f);
		}
		if (sa && cluster && (!ns || !*ns)) {
			f = schema_path_key(p, "namespace");
			errlist_add(errs, f, "FieldValueRequired", "Required value");
			free(f);
		}
		free(p);
	}
	const json_t *ref = json_object_get(obj, "roleRef");
	const char *rg = json_string_value(json_object_get(ref, "apiGroup"));
	const char *rk = json_string_value(json_object_get(ref, "kind"));
	if (rg && strcmp(rg, "rbac.authorization.k8s.io") != 0)
		errlist_add(errs, "roleRef.apiGroup", "FieldValueNotSupported",
		    "supported values: \"rbac.authorization.k8s.io\"");
	if (cluster && rk && strcmp(rk, "ClusterRole") != 0)
		errlist_add(errs, "roleRef.kind", "FieldValueNotSupported",
		    "supported values: \"ClusterRole\"");
}

void
rbac_rolebinding_validate(const json_t *obj, struct errlist *errs)
{
	subjects_check(obj, false, errs);
}

void
rbac_clusterrolebinding_validate(const json_t *obj, struct errlist *errs)
{
	subjects_check(obj, true, errs);
}

/* Subjects' apiGroup as Kubernetes defaults it. */
void
rbac_binding_defaults(json_t *obj)
{
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(obj, "subjects"), i, s) {
		const char *kind = json_string_value(json_object_get(s, "kind"));
		if (kind && strcmp(kind, "ServiceAccount") != 0)
			schema_default_str(s, "apiGroup", "rbac.authorization.k8s.io");
	}
}

/* roleRef is immutable (as upstream: delete and recreate the binding). */
void
rbac_binding_update(const json_t *old, const json_t *obj, struct errlist *errs)
{
	if (!json_equal(json_object_get(old, "roleRef"), json_object_get(obj, "roleRef")))
		errlist_add(errs, "roleRef", "FieldValueInvalid", "cannot change roleRef");
}
