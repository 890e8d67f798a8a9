/* cli_patch.c — the pure part of `v6 apply`: the configuration recorded in
 * the last-applied-configuration annotation and the merge patch computed
 * from it, kubectl-style (keys the user removed since the last apply become
 * null; lists replace). Called by cli_apply.c; no I/O. */
#include "cli.h"

#include <stdlib.h>

json_t *
cli_apply_config(const json_t *obj)
{
	json_t *cfg = json_deep_copy(obj);
	json_t *meta = json_object_get(cfg, "metadata");
	json_t *ann = json_object_get(meta, "annotations");
	if (json_is_object(ann)) {
		json_object_del(ann, CLI_LAST_APPLIED);
		if (json_object_size(ann) == 0)
			json_object_del(meta, "annotations");
	}
	cli_strip_server_fields(cfg);
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
cli_apply_patch(const json_t *last, const json_t *cur)
{
	json_t *p = patch_object(json_is_object(last) ? last : NULL, cur);
	json_object_del(json_object_get(p, "metadata"), "resourceVersion");
	return p;
}

json_t *
cli_apply_annotate(const json_t *cfg)
{
	json_t *obj = json_deep_copy(cfg);
	char *s = json_dumps(cfg, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_t *meta = obj_metadata(obj);
	json_t *ann = json_object_get(meta, "annotations");
	if (!json_is_object(ann)) {
		ann = json_object();
		json_object_set_new(meta, "annotations", ann);
	}
	json_object_set_new(ann, CLI_LAST_APPLIED, json_string(s ? s : "{}"));
	free(s);
	return obj;
}
