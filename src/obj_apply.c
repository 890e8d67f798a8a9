/* obj_apply.c — the pure part of apply: the configuration recorded in the
 * last-applied-configuration annotation and the merge patch computed from
 * it, kubectl-style (keys the user removed since the last apply become
 * null; lists replace), and kubectl diff's Secret masking. Called by the
 * CLI (cli_apply.c, cli_kustomize.c) and the Application controller
 * (ctrl_app.c); no I/O. */
#include "obj_apply.h"
#include "obj.h"
#include "util.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void
obj_strip_server_fields(json_t *obj)
{
	static const char *const meta[] = { "managedFields", "resourceVersion", "generation",
	    "uid", "creationTimestamp", "selfLink", "deletionTimestamp",
	    "deletionGracePeriodSeconds" };
	json_t *md = json_object_get(obj, "metadata");
	for (size_t i = 0; i < ARRAY_SIZE(meta); i++)
		json_object_del(md, meta[i]);
	json_object_del(obj, "status");
}

json_t *
obj_apply_config(const json_t *obj)
{
	json_t *cfg = json_deep_copy(obj);
	json_t *meta = json_object_get(cfg, "metadata");
	json_t *ann = json_object_get(meta, "annotations");
	if (json_is_object(ann)) {
		json_object_del(ann, OBJ_LAST_APPLIED);
		if (json_object_size(ann) == 0)
			json_object_del(meta, "annotations");
	}
	obj_strip_server_fields(cfg);
	return cfg;
}

static json_t *
patch_object(const json_t *last, const json_t *cur)
{
	json_t *out = json_object();
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)cur, k, v) {
		json_t *old = json_object_get(last, k);
		if (json_is_object(v) && json_is_object(old))
			json_object_set_new(out, k, patch_object(old, v));
		else
			json_object_set_new(out, k, json_deep_copy(v));
	}
	json_object_foreach((json_t *)last, k, v)
		if (json_object_get(cur, k) == NULL)
			json_object_set_new(out, k, json_null());
	return out;
}

json_t *
obj_apply_patch(const json_t *last, const json_t *cur)
{
	json_t *p = patch_object(json_is_object(last) ? last : NULL, cur);
	json_object_del(json_object_get(p, "metadata"), "resourceVersion");
	return p;
}

json_t *
obj_apply_annotate(const json_t *cfg)
{
	json_t *obj = json_deep_copy(cfg);
	char *s = json_dumps(cfg, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_t *meta = obj_metadata(obj);
	json_t *ann = json_object_get(meta, "annotations");
	if (!json_is_object(ann)) {
		ann = json_object();
		json_object_set_new(meta, "annotations", ann);
	}
	json_object_set_new(ann, OBJ_LAST_APPLIED, json_string(s ? s : "{}"));
	free(s);
	return obj;
}

static bool
is_secret(const json_t *o)
{
	return o && !strcmp(obj_kind(o), "Secret") && !strcmp(obj_api_version(o), "v1");
}

/* One field of before and after (either may be NULL), masked. */
static void
mask_field(json_t *before, json_t *after)
{
	const char *k;
	json_t *v, *tmp;
	json_object_foreach_safe(before, tmp, k, v) {
		json_t *w = json_object_get(after, k);
		bool changed = w && !json_equal(v, w);
		json_object_set_new(before, k, json_string(changed ? "*** (before)" : "***"));
		if (w)
			json_object_set_new(after, k, json_string(changed ? "*** (after)" : "***"));
	}
	json_object_foreach_safe(after, tmp, k, v)
		if (!json_object_get(before, k))
			json_object_set_new(after, k, json_string("***"));
}

void
obj_mask_secret(json_t *before, json_t *after)
{
	if (!is_secret(before) && !is_secret(after))
		return;
	static const char *const fields[] = { "data", "stringData" };
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
		mask_field(json_object_get(before, fields[i]), json_object_get(after, fields[i]));
	/* the last-applied record holds the values too */
	json_t *ab = obj_get_path(before, "metadata.annotations");
	json_t *aa = obj_get_path(after, "metadata.annotations");
	json_t *lb = json_object_get(ab, OBJ_LAST_APPLIED);
	json_t *la = json_object_get(aa, OBJ_LAST_APPLIED);
	bool changed = lb && la && !json_equal(lb, la);
	if (lb)
		json_object_set_new(ab, OBJ_LAST_APPLIED, json_string(changed ? "*** (before)" :
		    "***"));
	if (la)
		json_object_set_new(aa, OBJ_LAST_APPLIED, json_string(changed ? "*** (after)" :
		    "***"));
}
