/* obj_openapi.c — OpenAPI v3 documents for the kinds V6 serves, generated
 * from the kind table and the declarative schemas (obj_schema*.c): paths
 * whose operations carry x-kubernetes-group-version-kind and the query
 * parameters V6 honours (kubectl asks for fieldValidation before it sends
 * a manifest), and component schemas whose lists carry the merge keys of
 * patch_strategic (x-kubernetes-patch-merge-key, x-kubernetes-list-type),
 * so kubectl apply merges lists of CRD kinds too and `kubectl explain`
 * has fields to show. Served by api_server.c at /openapi/v3. */
#include "obj_schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEMA_DEPTH_MAX 40

/* Groups whose schemas are named io.k8s.api.NAME.VERSION.KIND, as the
 * apiserver names them; other groups (CRDs) by their reversed domain. */
static const struct {
	const char *group, *name;
} builtin_groups[] = {
	{ "", "core" }, { "apps", "apps" }, { "batch", "batch" },
	{ "autoscaling", "autoscaling" }, { "node.k8s.io", "node" },
};

/* Every function below takes the version it describes k in: k->version or an
 * older one k also serves (kind_serves_version), with the same schema. */
static char *
schema_name(const struct kind *k, const char *version)
{
	for (size_t i = 0; i < ARRAY_SIZE(builtin_groups); i++)
		if (strcmp(builtin_groups[i].group, k->group) == 0)
			return xasprintf("io.k8s.api.%s.%s.%s", builtin_groups[i].name, version,
			    k->kind);
	struct buf b = BUF_INIT;
	const char *end = k->group + strlen(k->group);
	while (end > k->group) {	/* "argoproj.io" -> "io.argoproj" */
		const char *dot = end;
		while (dot > k->group && dot[-1] != '.')
			dot--;
		buf_printf(&b, "%s%.*s", b.len ? "." : "", (int)(end - dot), dot);
		end = dot > k->group ? dot - 1 : dot;
	}
	buf_printf(&b, ".%s.%s", version, k->kind);
	return buf_steal(&b);
}

static json_t *field_schema(const struct schema_field *f, const char *parent, int depth);

static json_t *
object_schema(const struct schema_field *fields, const char *name, int depth)
{
	json_t *props = json_object(), *req = json_array();
	for (const struct schema_field *f = fields; f && f->name; f++) {
		json_object_set_new(props, f->name, field_schema(f, name, depth + 1));
		if (f->flags & SF_REQUIRED)
			json_array_append_new(req, json_string(f->name));
	}
	json_t *o = json_pack("{s:s, s:o}", "type", "object", "properties", props);
	if (json_array_size(req))
		json_object_set_new(o, "required", req);
	else
		json_decref(req);
	return o;
}

static json_t *
scalar_schema(enum schema_type t, const struct schema_field *f, int depth)
{
	switch (t) {
	case ST_STRING: {
		json_t *s = json_pack("{s:s}", "type", "string");
		if (f && f->enums) {
			json_t *e = json_array();
			for (const char *const *v = f->enums; *v; v++)
				json_array_append_new(e, json_string(*v));
			json_object_set_new(s, "enum", e);
		}
		return s;
	}
	case ST_INT:
		return json_pack("{s:s, s:s}", "type", "integer", "format", "int64");
	case ST_BOOL:
		return json_pack("{s:s}", "type", "boolean");
	case ST_NUMBER:
		return json_pack("{s:s, s:s}", "type", "number", "format", "double");
	case ST_MAP_STRING:
		return json_pack("{s:s, s:{s:s}}", "type", "object", "additionalProperties",
		    "type", "string");
	case ST_MAP_ANY:
		return json_pack("{s:s, s:b}", "type", "object",
		    "x-kubernetes-preserve-unknown-fields", 1);
	case ST_INT_OR_STRING:
	case ST_QUANTITY:
		return json_pack("{s:b, s:[{s:s}, {s:s}]}", "x-kubernetes-int-or-string", 1,
		    "anyOf", "type", "integer", "type", "string");
	case ST_OBJECT:
		return f && f->children && depth < SCHEMA_DEPTH_MAX ?
		    object_schema(f->children, f->name, depth) :
		    json_pack("{s:s, s:b}", "type", "object",
		    "x-kubernetes-preserve-unknown-fields", 1);
	default:
		return json_pack("{s:b}", "x-kubernetes-preserve-unknown-fields", 1);
	}
}

/* A list: items, and the merge strategy patch_strategic applies to it. */
static json_t *
array_schema(const struct schema_field *f, const char *parent, int depth)
{
	json_t *a = json_pack("{s:s, s:o}", "type", "array", "items",
	    scalar_schema(f->item, f, depth));
	const char *key, *alt;
	if (!patch_list_merges(f->name, parent, &key, &alt))
		return a;
	json_object_set_new(a, "x-kubernetes-patch-strategy", json_string("merge"));
	if (key == NULL) {
		json_object_set_new(a, "x-kubernetes-list-type", json_string("set"));
		return a;
	}
	bool has_key = false;
	for (const struct schema_field *c = f->children; c && c->name; c++)
		has_key |= strcmp(c->name, key) == 0;
	if (!has_key && alt)
		key = alt;
	json_object_set_new(a, "x-kubernetes-patch-merge-key", json_string(key));
	json_object_set_new(a, "x-kubernetes-list-type", json_string("map"));
	json_object_set_new(a, "x-kubernetes-list-map-keys", json_pack("[s]", key));
	return a;
}

static json_t *
field_schema(const struct schema_field *f, const char *parent, int depth)
{
	json_t *s = f->type == ST_ARRAY ? array_schema(f, parent, depth) :
	    scalar_schema(f->type, f, depth);
	if (f->flags & SF_UNSUPPORTED)
		json_object_set_new(s, "description", json_string("Valid upstream; not "
		    "supported by v6 (a manifest that sets it is refused by name)."));
	return s;
}

static json_t *
kind_schema(const struct kind *k, const char *version)
{
	struct schema_field meta = F_OBJ("metadata", schema_object_meta);
	json_t *o = object_schema(k->fields, "", 0);
	json_t *props = json_object_get(o, "properties");
	json_object_set_new(props, "apiVersion", json_pack("{s:s, s:s}", "type", "string",
	    "description", "APIVersion defines the versioned schema of this representation "
	    "of an object."));
	json_object_set_new(props, "kind", json_pack("{s:s, s:s}", "type", "string",
	    "description", "Kind is a string value representing the REST resource this "
	    "object represents."));
	json_object_set_new(props, "metadata", field_schema(&meta, "", 1));
	json_object_set_new(o, "x-kubernetes-group-version-kind", json_pack("[{s:s, s:s, s:s}]",
	    "group", k->group, "kind", k->kind, "version", version));
	return o;
}

static json_t *
param(const char *name, const char *in, bool required)
{
	return json_pack("{s:s, s:s, s:b, s:{s:s}}", "name", name, "in", in, "required",
	    required, "schema", "type", "string");
}

static json_t *
op(const struct kind *k, const char *version, const char *action, const char *ref, bool body)
{
	json_t *content = json_pack("{s:{s:{s:s}}}", "application/json", "schema", "$ref", ref);
	/* Query parameters belong to each operation: kubectl looks for
	 * fieldValidation among the PATCH operation's own. */
	static const char *const query[] = { "pretty", "dryRun", "fieldManager",
		"fieldValidation" };
	json_t *params = json_array();
	for (size_t i = 0; i < (body ? ARRAY_SIZE(query) : 1); i++)
		json_array_append_new(params, param(query[i], "query", false));
	json_t *o = json_pack("{s:s, s:o, s:{s:{s:s, s:o}}, s:s, s:{s:s, s:s, s:s}}",
	    "operationId", action, "parameters", params, "responses", "200", "description", "OK",
	    "content", content, "x-kubernetes-action", action,
	    "x-kubernetes-group-version-kind", "group", k->group, "version", version,
	    "kind", k->kind);
	if (!body)
		return o;
	static const char *const patch_types[] = { "application/json-patch+json",
		"application/merge-patch+json", "application/strategic-merge-patch+json" };
	json_t *rb = json_object();
	if (strcmp(action, "patch") == 0) {
		for (size_t i = 0; i < ARRAY_SIZE(patch_types); i++)
			json_object_set_new(rb, patch_types[i], json_pack("{s:{s:s}}", "schema",
			    "type", "object"));
	} else {
		json_object_set_new(rb, "application/json", json_pack("{s:{s:s}}", "schema",
		    "$ref", ref));
	}
	json_object_set_new(o, "requestBody", json_pack("{s:o, s:b}", "content", rb,
	    "required", 1));
	return o;
}

/* The collection and item paths of k with their operations. */
static void
add_paths(json_t *paths, const struct kind *k, const char *version, const char *ref)
{
	char base[256], coll[384], item[400];
	snprintf(base, sizeof base, "%s%s%s%s", k->group[0] ? "/apis/" : "/api/", k->group,
	    k->group[0] ? "/" : "", version);
	snprintf(coll, sizeof coll, "%s%s/%s", base, k->namespaced ?
	    "/namespaces/{namespace}" : "", k->plural);
	snprintf(item, sizeof item, "%s/{name}", coll);
	json_t *common = json_array();
	if (k->namespaced)
		json_array_append_new(common, param("namespace", "path", true));
	json_t *ip = json_deep_copy(common);
	json_array_insert_new(ip, 0, param("name", "path", true));
	json_object_set_new(paths, coll, json_pack("{s:o, s:o, s:o}", "parameters", common,
	    "get", op(k, version, "list", ref, false), "post", op(k, version, "post", ref,
	    true)));
	json_object_set_new(paths, item, json_pack("{s:o, s:o, s:o, s:o, s:o}", "parameters",
	    ip, "get", op(k, version, "get", ref, false), "put", op(k, version, "put", ref,
	    true), "patch", op(k, version, "patch", ref, true), "delete", op(k, version,
	    "delete", ref, false)));
}

json_t *
openapi_v3_group_version(const char *group, const char *version)
{
	json_t *paths = json_object(), *schemas = json_object();
	for (size_t i = 0; i < kind_count(); i++) {
		const struct kind *k = kind_at(i);
		if (strcmp(k->group, group) != 0 || !kind_serves_version(k, version))
			continue;
		char *name = schema_name(k, version);
		char *ref = xasprintf("#/components/schemas/%s", name);
		json_object_set_new(schemas, name, kind_schema(k, version));
		add_paths(paths, k, version, ref);
		free(name);
		free(ref);
	}
	if (json_object_size(schemas) == 0) {
		json_decref(paths);
		json_decref(schemas);
		return NULL;
	}
	return json_pack("{s:s, s:{s:s, s:s}, s:o, s:{s:o}}", "openapi", "3.0.0", "info",
	    "title", "Kubernetes", "version", "v6", "paths", paths, "components", "schemas",
	    schemas);
}

/* FNV-1a of the document: the index's ?hash= changes when a schema does,
 * so kubectl's cache never serves a stale one. */
static unsigned long long
doc_hash(const json_t *doc)
{
	char *s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	unsigned long long h = 1469598103934665603ULL;
	for (const char *p = s; p && *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	free(s);
	return h;
}

/* Adds group/version's document to the index paths, once. */
static void
index_add(json_t *paths, const char *group, const char *version)
{
	char key[160], url[256];
	snprintf(key, sizeof key, "%s%s%s%s", group[0] ? "apis/" : "api/", group,
	    group[0] ? "/" : "", version);
	if (json_object_get(paths, key))
		return;
	json_t *doc = openapi_v3_group_version(group, version);
	snprintf(url, sizeof url, "/openapi/v3/%s?hash=%016llX", key, doc_hash(doc));
	json_decref(doc);
	json_object_set_new(paths, key, json_pack("{s:s}", "serverRelativeURL", url));
}

json_t *
openapi_v3_index(void)
{
	json_t *paths = json_object();
	const char *alias;
	for (size_t i = 0; i < kind_count(); i++) {
		const struct kind *k = kind_at(i);
		index_add(paths, k->group, k->version);
		for (size_t j = 0; (alias = kind_alias_version(k->group, j)) != NULL; j++)
			index_add(paths, k->group, alias);
	}
	return json_pack("{s:o}", "paths", paths);
}
