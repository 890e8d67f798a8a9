/* obj_meta.c — the one set of object accessors every module uses: the
 * common parts of an object (apiVersion, kind, metadata), strings and
 * integers at a path, annotations, conditions, times, owner references and
 * pod readiness. Returned strings are borrowed from the object. */
#include "obj.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *
obj_str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}


const char *
obj_api_version(const json_t *obj)
{
	return obj_str(obj, "apiVersion");
}

const char *
obj_kind(const json_t *obj)
{
	return obj_str(obj, "kind");
}

static const json_t *
meta(const json_t *obj)
{
	return json_object_get(obj, "metadata");
}

const char *
obj_name(const json_t *obj)
{
	return obj_str(meta(obj), "name");
}

const char *
obj_namespace(const json_t *obj)
{
	return obj_str(meta(obj), "namespace");
}

const char *
obj_uid(const json_t *obj)
{
	return obj_str(meta(obj), "uid");
}

int64_t
obj_resource_version(const json_t *obj)
{
	const char *s = obj_str(meta(obj), "resourceVersion");
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

const char *
obj_str_at(const json_t *o, const char *path)
{
	const char *s = json_string_value(obj_get_path(o, path));
	return s ? s : "";
}

int64_t
obj_int_at(const json_t *o, const char *path, int64_t dflt)
{
	const json_t *v = obj_get_path(o, path);
	return json_is_integer(v) ? json_integer_value(v) : dflt;
}

json_t *
obj_child(json_t *o, const char *key)
{
	json_t *c = json_object_get(o, key);
	if (!json_is_object(c)) {
		c = json_object();
		json_object_set_new(o, key, c);
	}
	return c;
}

const char *
obj_annotation(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj_get_path(obj, "metadata.annotations"), key));
}

json_t *
obj_annotations(json_t *obj)
{
	return obj_child(obj_metadata(obj), "annotations");
}

bool
obj_set_annotation(json_t *obj, const char *key, const char *val)
{
	const char *cur = obj_annotation(obj, key);
	if ((!cur && !val) || (cur && val && strcmp(cur, val) == 0))
		return false;
	if (val)
		json_object_set_new(obj_annotations(obj), key, json_string(val));
	else
		json_object_del(obj_annotations(obj), key);
	return true;
}

bool
obj_is_deleting(const json_t *obj)
{
	return obj_get_path(obj, "metadata.deletionTimestamp") != NULL;
}

int64_t
obj_time_ms(const json_t *v)
{
	const char *s = json_string_value(v);
	time_t t;
	if (!s || time_parse_rfc3339(s, &t) < 0)
		return 0;
	int64_t ms = (int64_t)t * 1000;
	const char *dot = strchr(s, '.');
	if (dot) {
		int scale = 100;
		for (const char *p = dot + 1; *p >= '0' && *p <= '9' && scale; p++, scale /= 10)
			ms += (*p - '0') * scale;
	}
	return ms;
}

int64_t
obj_time_s(const json_t *v)
{
	return obj_time_ms(v) / 1000;
}

json_t *
obj_time_json(int64_t ms)
{
	char b[32];
	time_format_rfc3339((time_t)(ms / 1000), b);
	return json_string(b);
}

json_t *
obj_condition(const json_t *status, const char *type)
{
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(status, "conditions"), i, c)
		if (strcmp(obj_str(c, "type"), type) == 0)
			return c;
	return NULL;
}

void
obj_condition_remove(json_t *status, const char *type)
{
	json_t *conds = json_object_get(status, "conditions");
	for (size_t i = json_array_size(conds); i-- > 0;)
		if (strcmp(obj_str(json_array_get(conds, i), "type"), type) == 0)
			json_array_remove(conds, i);
	if (conds && json_array_size(conds) == 0)
		json_object_del(status, "conditions");
}

void
obj_condition_set(json_t *status, json_t *c)
{
	const char *type = obj_str(c, "type");
	json_t *cur = obj_condition(status, type);
	if (cur && strcmp(obj_str(cur, "status"), obj_str(c, "status")) == 0 &&
	    strcmp(obj_str(cur, "reason"), obj_str(c, "reason")) == 0) {
		json_decref(c);
		return;
	}
	if (cur && strcmp(obj_str(cur, "status"), obj_str(c, "status")) == 0 &&
	    json_object_get(cur, "lastTransitionTime"))
		json_object_set(c, "lastTransitionTime", json_object_get(cur, "lastTransitionTime"));
	obj_condition_remove(status, type);
	json_t *conds = json_object_get(status, "conditions");
	if (!json_is_array(conds)) {
		conds = json_array();
		json_object_set_new(status, "conditions", conds);
	}
	json_array_append_new(conds, c);
}

const json_t *
obj_controller_ref(const json_t *obj)
{
	size_t i;
	json_t *ref;
	json_array_foreach(obj_get_path(obj, "metadata.ownerReferences"), i, ref)
		if (json_is_true(json_object_get(ref, "controller")))
			return ref;
	return NULL;
}

json_t *
obj_new_controller_ref(const json_t *owner)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:b, s:b}",
	    "apiVersion", obj_api_version(owner), "kind", obj_kind(owner),
	    "name", obj_name(owner), "uid", obj_uid(owner),
	    "controller", 1, "blockOwnerDeletion", 1);
}

static void
index_one(json_t *idx, const json_t *o)
{
	char *k = xasprintf("%s/%s", obj_namespace(o), obj_name(o));
	json_object_set(idx, k, (json_t *)o);
	free(k);
}

json_t *
obj_index(const json_t *coll)
{
	json_t *idx = json_object(), *o;
	const char *key;
	size_t i;
	if (json_is_array(coll))
		json_array_foreach(coll, i, o)
			index_one(idx, o);
	else
		json_object_foreach((json_t *)coll, key, o)
			index_one(idx, o);
	return idx;
}

const json_t *
obj_lookup(const json_t *index, const char *ns, const char *name)
{
	char *k = xasprintf("%s/%s", ns, name);
	const json_t *o = json_object_get(index, k);
	free(k);
	return o;
}

json_t *
obj_with_owner_ref(const json_t *obj, const char *uid, json_t *ref)
{
	json_t *o = json_deep_copy(obj), *refs = json_array(), *r;
	size_t i;
	json_array_foreach(obj_get_path(obj, "metadata.ownerReferences"), i, r)
		if (strcmp(obj_str(r, "uid"), uid) != 0)
			json_array_append(refs, r);
	if (ref)
		json_array_append_new(refs, ref);
	if (json_array_size(refs))
		json_object_set_new(obj_metadata(o), "ownerReferences", refs);
	else {
		json_decref(refs);
		json_object_del(obj_metadata(o), "ownerReferences");
	}
	return o;
}

json_t *
obj_claim(const json_t *obj, const json_t *owner, bool adopt)
{
	return obj_with_owner_ref(obj, obj_uid(owner), adopt ? obj_new_controller_ref(owner) :
	    NULL);
}

bool
obj_pod_ready(const json_t *pod, int64_t *since_s)
{
	const json_t *c = obj_condition(json_object_get(pod, "status"), "Ready");
	bool ready = c && strcmp(obj_str(c, "status"), "True") == 0;
	if (since_s)
		*since_s = ready ? obj_time_s(json_object_get(c, "lastTransitionTime")) : 0;
	return ready;
}

bool
obj_pod_available(const json_t *pod, int64_t min_ready_s, int64_t now_ms)
{
	int64_t since;
	if (!obj_pod_ready(pod, &since))
		return false;
	return min_ready_s == 0 || (since > 0 && (since + min_ready_s) * 1000 < now_ms);
}

bool
obj_pod_active(const json_t *pod)
{
	const char *phase = obj_str(json_object_get(pod, "status"), "phase");
	return strcmp(phase, "Succeeded") != 0 && strcmp(phase, "Failed") != 0 &&
	    !obj_is_deleting(pod);
}
