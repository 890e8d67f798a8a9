/* obj_meta.c — read access to the common parts of an object (apiVersion,
 * kind, metadata) for every module; returned strings are borrowed from the
 * object. */
#include "obj.h"

#include <stdlib.h>
#include <string.h>

static const char *
str_at(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

const char *
obj_api_version(const json_t *obj)
{
	return str_at(obj, "apiVersion");
}

const char *
obj_kind(const json_t *obj)
{
	return str_at(obj, "kind");
}

static const json_t *
meta(const json_t *obj)
{
	return json_object_get(obj, "metadata");
}

const char *
obj_name(const json_t *obj)
{
	return str_at(meta(obj), "name");
}

const char *
obj_namespace(const json_t *obj)
{
	return str_at(meta(obj), "namespace");
}

const char *
obj_uid(const json_t *obj)
{
	return str_at(meta(obj), "uid");
}

int64_t
obj_resource_version(const json_t *obj)
{
	const char *s = str_at(meta(obj), "resourceVersion");
	char *end;
	long long v = strtoll(s, &end, 10);
	return (*s && *end == '\0' && v > 0) ? (int64_t)v : 0;
}

json_t *
obj_metadata(json_t *obj)
{
	json_t *m = json_object_get(obj, "metadata");
	if (!json_is_object(m)) {
		m = json_object();
		json_object_set_new(obj, "metadata", m);
	}
	return m;
}

json_t *
obj_labels(const json_t *obj)
{
	json_t *l = json_object_get(meta(obj), "labels");
	return json_is_object(l) ? l : NULL;
}

json_t *
obj_get_path(const json_t *obj, const char *path)
{
	const json_t *cur = obj;
	const char *p = path;
	while (cur && *p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		cur = json_object_getn(cur, p, n);
		p += n + (dot ? 1 : 0);
	}
	return (json_t *)cur;
}
