/* obj_schema_argocd.c — the schema and checks of Argo CD's Application
 * (argoproj.io/v1alpha1), with Argo CD v2.x's field names. The table of
 * kinds (obj_kind.c) points here; the controller is ctrl_app.c. Fields
 * Argo CD has and V6 does not honour (Helm, plugins, multiple sources,
 * other clusters) are refused with "not supported by v6". */
#include "obj_schema.h"

#include <stdio.h>
#include <string.h>

/* The destination servers that mean "this cluster". */
#define APP_IN_CLUSTER_URL "https://kubernetes.default.svc"
#define APP_IN_CLUSTER_NAME "in-cluster"

static const struct schema_field directory[] = {
	F_BOOL("recurse"),
	F_STR("include"),
	F_STR("exclude"),
	F_UNSUP("jsonnet"),
	F_END
};

static const struct schema_field kustomize[] = {
	F_UNSUP("namePrefix"), F_UNSUP("nameSuffix"), F_UNSUP("images"),
	F_UNSUP("commonLabels"), F_UNSUP("commonAnnotations"), F_UNSUP("version"),
	F_UNSUP("forceCommonLabels"), F_UNSUP("forceCommonAnnotations"),
	F_UNSUP("namespace"), F_UNSUP("replicas"), F_UNSUP("patches"),
	F_UNSUP("components"), F_UNSUP("labelWithoutSelector"),
	F_END
};

static const struct schema_field source[] = {
	F_STR("repoURL", .flags = SF_REQUIRED),
	F_STR("targetRevision"),
	F_STR("path"),
	F_OBJ("directory", directory),
	F_OBJ("kustomize", kustomize),
	F_UNSUP("chart"), F_UNSUP("helm"), F_UNSUP("plugin"), F_UNSUP("ref"),
	F_END
};

static const struct schema_field destination[] = {
	F_STR("server"),
	F_STR("name"),
	F_STR("namespace"),
	F_END
};

static const struct schema_field automated[] = {
	F_BOOL("prune"),
	F_BOOL("selfHeal"),
	F_BOOL("allowEmpty"),
	F_END
};

static const struct schema_field backoff[] = {
	F_STR("duration"),
	F_INT("factor"),
	F_STR("maxDuration"),
	F_END
};

static const struct schema_field retry[] = {
	F_INT("limit"),
	F_OBJ("backoff", backoff),
	F_END
};

/* The sync options V6 honours, and those Argo CD has that it does not. */
static const char *const sync_options[] = { "CreateNamespace=true", "CreateNamespace=false",
	"PruneLast=true", "PruneLast=false", "ApplyOutOfSyncOnly=true",
	"ApplyOutOfSyncOnly=false", "Validate=true", "Prune=true", NULL };
static const char *const sync_options_unsup[] = { "Validate=false", "ServerSideApply=true",
	"Replace=true", "PrunePropagationPolicy=foreground",
	"PrunePropagationPolicy=background", "PrunePropagationPolicy=orphan",
	"RespectIgnoreDifferences=true", "FailOnSharedResource=true", "Prune=false",
	"SkipDryRunOnMissingResource=true", "Delete=false", NULL };

static const struct schema_field sync_policy[] = {
	F_OBJ("automated", automated),
	F_ARR("syncOptions", ST_STRING, .enums = sync_options,
	    .unsupported = sync_options_unsup),
	F_OBJ("retry", retry),
	F_UNSUP("managedNamespaceMetadata"),
	F_END
};

static const struct schema_field info[] = {
	F_STR("name", .flags = SF_REQUIRED),
	F_STR("value", .flags = SF_REQUIRED),
	F_END
};

static const struct schema_field app_spec[] = {
	F_STR("project"),
	F_OBJ("source", source, .flags = SF_REQUIRED),
	F_OBJ("destination", destination, .flags = SF_REQUIRED),
	F_OBJ("syncPolicy", sync_policy),
	F_AOBJ("info", info),
	F_INT("revisionHistoryLimit"),
	F_UNSUP("sources"),
	F_UNSUP("ignoreDifferences"),
	F_END
};

static const struct schema_field initiated_by[] = {
	F_STR("username"),
	F_BOOL("automated"),
	F_END
};

static const struct schema_field op_sync[] = {
	F_STR("revision"),
	F_BOOL("prune"),
	F_BOOL("dryRun"),
	F_ARR("syncOptions", ST_STRING, .enums = sync_options,
	    .unsupported = sync_options_unsup),
	F_OBJ("source", source),
	F_UNSUP("resources"), F_UNSUP("syncStrategy"), F_UNSUP("manifests"),
	F_END
};

static const struct schema_field operation[] = {
	F_OBJ("sync", op_sync, .flags = SF_REQUIRED),
	F_OBJ("initiatedBy", initiated_by),
	F_AOBJ("info", info),
	F_OBJ("retry", retry),
	F_END
};

const struct schema_field schema_application[] = {
	F_OBJ("spec", app_spec, .flags = SF_REQUIRED),
	F_OBJ("operation", operation),
	F_MAPA("status"),
	F_END
};

/* A Go duration as Argo CD's retry takes it ("5s", "3m", "1h"). */
static bool
duration_ok(const char *s)
{
	int64_t ms;
	return duration_parse(s, &ms) == 0 && ms >= 0;
}

void
argocd_application_validate(const json_t *obj, struct errlist *errs)
{
	const json_t *dst = obj_get_path(obj, "spec.destination");
	const char *server = obj_str(dst, "server"), *name = obj_str(dst, "name");
	if (*server && strcmp(server, APP_IN_CLUSTER_URL))
		errlist_add(errs, "spec.destination.server", "FieldValueNotSupported",
		    "not supported by v6: a destination other than " APP_IN_CLUSTER_URL
		    " (this cluster)");
	if (*name && strcmp(name, APP_IN_CLUSTER_NAME))
		errlist_add(errs, "spec.destination.name", "FieldValueNotSupported",
		    "not supported by v6: a destination other than " APP_IN_CLUSTER_NAME);
	const char *url = json_string_value(obj_get_path(obj, "spec.source.repoURL"));
	if (url && !*url)
		errlist_add(errs, "spec.source.repoURL", "FieldValueRequired",
		    "Required value");
	static const char *const paths[] = { "spec.syncPolicy.retry.backoff.duration",
		"spec.syncPolicy.retry.backoff.maxDuration",
		"operation.retry.backoff.duration", "operation.retry.backoff.maxDuration" };
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
		const char *d = obj_str_at(obj, paths[i]);
		if (*d && !duration_ok(d))
			errlist_add(errs, paths[i], "FieldValueInvalid",
			    "Invalid value: a duration such as \"5s\" or \"3m\"");
	}
	const char *p = obj_str_at(obj, "spec.source.path");
	if (p[0] == '/' || strstr(p, ".."))
		errlist_add(errs, "spec.source.path", "FieldValueInvalid",
		    "Invalid value: a path inside the repository (no leading / or ..)");
}
