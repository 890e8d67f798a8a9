/* kustomize_patch.c — kustomize's patch transformers: patches (strategic
 * merge or JSON 6902, with targets by group / version / kind / name /
 * namespace / label and annotation selectors), and the deprecated
 * patchesStrategicMerge and patchesJson6902. The patching itself is V6's
 * obj_patch.c (patch_strategic, patch_json). */
#include "kustomize_int.h"

#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "obj.h"
#include "util.h"

/* s matches the regular expression re as a whole ("^(re)$"). */
static int
regex_whole(const char *re, const char *s, bool *match, char **err)
{
	char *anchored = xasprintf("^(%s)$", re);
	regex_t rx;
	int rc = regcomp(&rx, anchored, REG_EXTENDED | REG_NOSUB);
	free(anchored);
	if (rc != 0) {
		*err = xasprintf("invalid regular expression in target: %s", re);
		return -EINVAL;
	}
	*match = regexec(&rx, s, 0, NULL, 0) == 0;
	regfree(&rx);
	return 0;
}

static int
selector_match(const char *expr, const json_t *map, bool *match, char **err)
{
	struct selector *sel;
	char *e = NULL;
	if (selector_parse(expr, &sel, &e) < 0) {
		*err = xasprintf("invalid selector %s: %s", expr, e);
		free(e);
		return -EINVAL;
	}
	*match = selector_matches(sel, map);
	selector_free(sel);
	return 0;
}

/* The original id (first previous one) or the current one. */
static const char *
org_field(const struct kres *r, const char *key)
{
	json_t *first = json_array_get(r->prev, 0);
	if (first)
		return obj_str(first, key);
	return !strcmp(key, "name") ? obj_name(r->obj) : obj_namespace(r->obj);
}

int
kz_target_match(const json_t *t, const struct kres *r, bool *match, char **err)
{
	const json_t *o = r->obj;
	const char *av = obj_api_version(o), *slash = strchr(av, '/');
	char *group = slash ? xstrndup(av, (size_t)(slash - av)) : xstrdup("");
	const char *version = slash ? slash + 1 : av;
	*match = false;
	bool ok = (!obj_str(t, "group")[0] || !strcmp(obj_str(t, "group"), group)) &&
	    (!obj_str(t, "version")[0] || !strcmp(obj_str(t, "version"), version)) &&
	    (!obj_str(t, "kind")[0] || !strcmp(obj_str(t, "kind"), obj_kind(o)));
	free(group);
	if (!ok)
		return 0;
	bool m1 = true, m2 = false;
	int rc = 0;
	const char *ns = obj_str(t, "namespace");
	if (ns[0] && (rc = regex_whole(ns, kz_eff_ns(org_field(r, "namespace")), &m1, err)) == 0 &&
	    !m1)
		rc = regex_whole(ns, kz_eff_ns(obj_namespace(o)), &m1, err);
	if (rc < 0 || !m1)
		return rc;
	const char *name = obj_str(t, "name");
	if (name[0] && (rc = regex_whole(name, org_field(r, "name"), &m1, err)) == 0 && !m1)
		rc = regex_whole(name, obj_name(o), &m1, err);
	if (rc < 0 || !m1)
		return rc;
	const char *ls = obj_str(t, "labelSelector"), *as = obj_str(t, "annotationSelector");
	if (ls[0] && ((rc = selector_match(ls, obj_labels(o), &m1, err)) < 0 || !m1))
		return rc;
	if (as[0]) {
		json_t *ann = json_object_get(json_object_get(o, "metadata"), "annotations");
		if ((rc = selector_match(as, ann, &m2, err)) < 0 || !m2)
			return rc;
	}
	*match = true;
	return 0;
}

/* The patch text of an entry: inline "patch" or the file at "path"; a
 * plain string (patchesStrategicMerge) is a path or inline YAML. */
static int
patch_text(const struct kust *k, const json_t *e, char **text, char **file, char **err)
{
	size_t len;
	const char *inline_text = json_is_string(e) ? json_string_value(e) : obj_str(e, "patch");
	const char *path = json_is_string(e) ? "" : obj_str(e, "path");
	if (json_is_string(e) && !strchr(inline_text, '\n')) {
		path = inline_text;
		inline_text = "";
	}
	if (path[0]) {
		*file = xasprintf("%s/%s", k->dir, path);
		return kz_read(k->dir, path, text, &len, err);
	}
	if (!inline_text[0]) {
		*err = xasprintf("%s: a patch needs path or patch", k->file);
		return -EINVAL;
	}
	*file = xstrdup(k->file);
	*text = xstrdup(inline_text);
	return 0;
}

/* The resource with the id of the patch (any of its ids). */
static bool
id_matches(const struct kres *r, const json_t *patch)
{
	const char *pns = obj_namespace(patch);
	return !strcmp(obj_kind(r->obj), obj_kind(patch)) &&
	    kz_had_id(r, obj_name(patch), pns[0] ? pns : NULL);
}

/* kustomize merges keyed lists with the patch's elements first (in the
 * patch's order), then the others (kyaml's prepend direction); V6's
 * strategic merge keeps the original order, so the result is reordered. */
static void
reorder(json_t *res, const json_t *patch, const char *parent)
{
	const char *key;
	json_t *pv;
	json_object_foreach((json_t *)patch, key, pv) {
		json_t *rv = json_object_get(res, key);
		if (json_is_object(pv) && json_is_object(rv)) {
			reorder(rv, pv, key);
			continue;
		}
		const char *mk = json_is_array(pv) && json_is_array(rv)
		    ? patch_strategic_list_key(key, parent, rv, pv) : NULL;
		if (!mk)
			continue;
		size_t n = json_array_size(rv), i, j;
		bool *taken = xcalloc(n + 1, sizeof *taken);
		json_t *out = json_array(), *p, *r;
		json_array_foreach(pv, i, p) {
			json_t *kv = json_object_get(p, mk);
			json_array_foreach(rv, j, r)
				if (!taken[j] && kv && json_equal(json_object_get(r, mk), kv)) {
					taken[j] = true;
					reorder(r, p, key);
					json_array_append(out, r);
					break;
				}
		}
		json_array_foreach(rv, j, r)
			if (!taken[j])
				json_array_append(out, r);
		free(taken);
		json_object_set_new(res, key, out);
	}
}

/* Strategic-merge patch onto resource i; "$patch: delete" removes it.
 * Returns 1 when the resource was removed. */
static int
smp_one(struct kresmap *m, size_t i, const json_t *patch, const char *file, char **err)
{
	if (!strcmp(obj_str(patch, "$patch"), "delete")) {
		kz_remove(m, i);
		return 1;
	}
	json_t *p = json_deep_copy(patch);
	json_object_del(p, "apiVersion");
	json_object_del(p, "kind");
	json_t *md = obj_metadata(p);
	json_object_set_new(md, "name", json_string(obj_name(m->v[i].obj)));
	if (*obj_namespace(m->v[i].obj))
		json_object_set_new(md, "namespace", json_string(obj_namespace(m->v[i].obj)));
	else
		json_object_del(md, "namespace");
	char *e = NULL;
	json_t *out = patch_strategic(m->v[i].obj, p, &e);
	if (out)
		reorder(out, p, "");
	json_decref(p);
	if (!out) {
		*err = xasprintf("%s: strategic merge patch of %s/%s: %s", file,
		    obj_kind(m->v[i].obj), obj_name(m->v[i].obj), e ? e : "failed");
		free(e);
		return -EINVAL;
	}
	json_decref(m->v[i].obj);
	m->v[i].obj = out;
	return 0;
}

static int
json_one(struct kres *r, const json_t *ops, const char *file, char **err)
{
	char *e = NULL;
	json_t *out = patch_json(r->obj, ops, &e);
	if (!out) {
		*err = xasprintf("%s: JSON patch of %s/%s: %s", file, obj_kind(r->obj),
		    obj_name(r->obj), e ? e : "failed");
		free(e);
		return -EINVAL;
	}
	json_decref(r->obj);
	r->obj = out;
	return 0;
}

/* Applies one parsed patch (docs: SMP documents, or one array of JSON
 * 6902 operations) to the resources target selects (NULL: the id of each
 * SMP document). */
static int
apply_patch(struct kresmap *m, const json_t *docs, const json_t *target, const char *file,
    char **err)
{
	bool json6902 = json_is_array(json_array_get(docs, 0));
	if (json6902 && !target) {
		*err = xasprintf("%s: must specify a target for JSON patch", file);
		return -EINVAL;
	}
	size_t d;
	json_t *doc;
	json_array_foreach(docs, d, doc) {
		bool any = false;
		for (size_t i = 0; i < m->n; i++) {
			bool match = false;
			int rc = target ? kz_target_match(target, &m->v[i], &match, err) : 0;
			if (rc < 0)
				return rc;
			if (!target)
				match = id_matches(&m->v[i], doc);
			if (!match)
				continue;
			any = true;
			rc = json6902 ? json_one(&m->v[i], doc, file, err)
			    : smp_one(m, i, doc, file, err);
			if (rc < 0)
				return rc;
			i -= rc;	/* removed: the next one moved to i */
		}
		if (!any && !target) {
			*err = xasprintf("%s: no resource matches strategic merge patch \"%s/%s\"",
			    file, obj_kind(doc), obj_name(doc));
			return -ENOENT;
		}
	}
	return 0;
}

int
kz_patch_step(const struct kust *k, struct kresmap *m, const char *field, char **err)
{
	json_t *list, *e;
	size_t i;
	if (kz_list(k, field, &list, err) < 0)
		return -EINVAL;
	json_array_foreach(list, i, e) {
		char *text = NULL, *file = NULL;
		json_t *docs = NULL;
		int rc = patch_text(k, e, &text, &file, err);
		if (rc == 0)
			rc = kz_parse(text, strlen(text), file, false, &docs, err);
		json_t *target = json_is_object(e) ? json_object_get(e, "target") : NULL;
		if (rc == 0 && !strcmp(field, "patchesJson6902") &&
		    !json_is_array(json_array_get(docs, 0))) {
			*err = xasprintf("%s: patchesJson6902 needs a list of operations", file);
			rc = -EINVAL;
		}
		if (rc == 0)
			rc = apply_patch(m, docs, target, file, err);
		json_decref(docs);
		free(text);
		free(file);
		if (rc < 0)
			return rc;
	}
	return 0;
}
