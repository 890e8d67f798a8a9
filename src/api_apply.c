/* api_apply.c — server-side apply (PATCH application/apply-patch+yaml):
 * the fields a manager applies as a fieldsV1 set in metadata.managedFields,
 * conflicts with the fields other appliers own (409 with
 * FieldManagerConflict causes; ?force=true takes them over), fields a
 * manager stops applying removed unless someone else owns them, and the
 * applied configuration merged as a strategic merge patch (lists with a
 * merge key merge by key). Called by api_server.c's PATCH handler; the
 * write goes through api_create / api_update like every other. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- field sets (fieldsV1) -------------------------------------------- */

static json_t *fields_of_object(const json_t *o, const char *self, bool top);

/* "k:{\"name\":\"app\"}" for an item of a list merged by key. */
static char *
item_key(const json_t *item, const char *key)
{
	json_t *k = json_pack("{s:O}", key, json_object_get(item, key));
	char *s = json_dumps(k, JSON_COMPACT | JSON_SORT_KEYS);
	char *out = xasprintf("k:%s", s);
	free(s);
	json_decref(k);
	return out;
}

static json_t *
fields_of_list(const json_t *a, const char *field, const char *parent)
{
	const char *key, *alt;
	size_t i;
	json_t *item;
	if (!patch_list_merges(field, parent, &key, &alt))
		return json_object();	/* atomic: the list is one leaf */
	json_t *set = json_object();
	json_array_foreach(a, i, item) {
		if (key == NULL) {
			char *v = json_dumps(item, JSON_COMPACT | JSON_ENCODE_ANY);
			char *name = xasprintf("v:%s", v);
			json_object_set_new(set, name, json_object());
			free(name);
			free(v);
			continue;
		}
		const char *k = json_object_get(item, key) || !alt ? key : alt;
		if (!json_is_object(item) || !json_object_get(item, k)) {
			json_decref(set);
			return json_object();	/* not keyed after all: atomic */
		}
		char *name = item_key(item, k);
		json_t *sub = fields_of_object(item, field, false);
		json_object_set_new(sub, ".", json_object());
		json_object_set_new(set, name, sub);
		free(name);
	}
	return set;
}

/* The fields set in o (an object named self); at the top, apiVersion,
 * kind, the name and namespace and the system fields are not owned. */
static json_t *
fields_of_object(const json_t *o, const char *self, bool top)
{
	static const char *const unowned_meta[] = { "name", "namespace", "uid",
		"resourceVersion", "generation", "creationTimestamp", "managedFields",
		"deletionTimestamp", "deletionGracePeriodSeconds", "selfLink" };
	json_t *set = json_object(), *v;
	const char *k;
	json_object_foreach((json_t *)o, k, v) {
		if (top && (strcmp(k, "apiVersion") == 0 || strcmp(k, "kind") == 0 ||
		    strcmp(k, "status") == 0))
			continue;
		bool skip = false;
		for (size_t i = 0; self && strcmp(self, "metadata") == 0 && top == false &&
		    i < ARRAY_SIZE(unowned_meta); i++)
			skip |= strcmp(k, unowned_meta[i]) == 0;
		if (skip)
			continue;
		char *name = xasprintf("f:%s", k);
		json_t *sub = json_is_object(v) && json_object_size(v) ?
		    fields_of_object(v, k, false) : json_is_array(v) ?
		    fields_of_list(v, k, self ? self : "") : json_object();
		if (top && strcmp(k, "metadata") == 0 && json_object_size(sub) == 0)
			json_decref(sub);	/* only the name: nothing owned */
		else
			json_object_set_new(set, name, sub);
		free(name);
	}
	return set;
}

/* ---- walking a field set against an object ---------------------------- */

/* The value an entry names inside v, or NULL. */
static const json_t *
step(const json_t *v, const char *entry)
{
	if (strcmp(entry, ".") == 0)
		return v;
	if (str_has_prefix(entry, "f:"))
		return json_object_get(v, entry + 2);
	json_t *want = json_loads(entry + 2, JSON_DECODE_ANY, NULL);
	const json_t *found = NULL, *item;
	size_t i;
	json_array_foreach(v, i, item) {
		if (str_has_prefix(entry, "v:") ? json_equal(item, want) : json_is_object(item) &&
		    json_equal(json_object_get(item, json_object_iter_key(json_object_iter(want))),
		    json_object_iter_value(json_object_iter(want))))
			found = item;
		if (found)
			break;
	}
	json_decref(want);
	return found;
}

/* The value the entries path[0..n-1] name inside root, or NULL. */
static const json_t *
value_at(const json_t *root, const char *const *path, size_t n)
{
	for (size_t i = 0; root && i < n; i++)
		root = step(root, path[i]);
	return root;
}

/* ".spec.template.spec.containers[name=\"app\"].image" from entries. */
static char *
path_text(const char *const *path, size_t n)
{
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		if (str_has_prefix(path[i], "f:")) {
			buf_printf(&b, ".%s", path[i] + 2);
		} else if (str_has_prefix(path[i], "k:")) {
			json_t *k = json_loads(path[i] + 2, 0, NULL);
			const char *key = json_object_iter_key(json_object_iter(k));
			char *v = json_dumps(json_object_iter_value(json_object_iter(k)),
			    JSON_ENCODE_ANY);
			buf_printf(&b, "[%s=%s]", key ? key : "", v ? v : "");
			free(v);
			json_decref(k);
		} else if (str_has_prefix(path[i], "v:")) {
			buf_printf(&b, "[=%s]", path[i] + 2);
		}
	}
	return buf_steal(&b);
}

#define PATH_MAX_DEPTH 64

struct walk {
	const json_t *cur, *applied;	/* conflict check */
	json_t *other;			/* its leaves in common are taken (force) */
	struct errlist *conflicts;
	const char *other_manager;	/* "\"ops\"", "\"kubectl\" using apps/v1" */
	bool force;
};

/* Leaves of mine that other also owns and whose value the applied
 * configuration changes: conflicts, or (force) taken from other. */
static void
conflicts_walk(struct walk *w, const json_t *mine, json_t *other, const char **path,
    size_t n)
{
	const char *k;
	json_t *sub, *osub;
	void *tmp;
	if (n >= PATH_MAX_DEPTH)
		return;
	json_object_foreach_safe((json_t *)mine, tmp, k, sub) {
		osub = json_object_get(other, k);
		if (!osub)
			continue;
		path[n] = k;
		if (json_object_size(sub) && json_object_size(osub)) {
			conflicts_walk(w, sub, osub, path, n + 1);
			if (json_object_size(osub) == 0)
				json_object_del(other, k);
			continue;
		}
		if (strcmp(k, ".") == 0)
			continue;	/* both keep the item: no value to differ */
		const json_t *a = value_at(w->applied, path, n + 1);
		const json_t *c = value_at(w->cur, path, n + 1);
		if (a && c && json_equal(a, c))
			continue;	/* the same value: shared ownership */
		if (w->force) {
			json_object_del(other, k);
			continue;
		}
		char *p = path_text(path, n + 1);
		errlist_add(w->conflicts, p, "FieldManagerConflict", "conflict with %s: %s",
		    w->other_manager, p);
		free(p);
	}
}

/* Does any set in others own something at or under path? */
static bool
owned_by_others(json_t *const *others, size_t nothers, const char *const *path, size_t n)
{
	for (size_t i = 0; i < nothers; i++) {
		const json_t *s = others[i];
		for (size_t j = 0; s && j < n; j++)
			s = json_object_get(s, path[j]);
		if (s)
			return true;
	}
	return false;
}

/* Removes from obj what old owned, new does not, and nobody else owns. */
static void
remove_dropped(json_t *obj, const json_t *old, const json_t *new, json_t *const *others,
    size_t nothers, const char **path, size_t n)
{
	const char *k;
	json_t *sub;
	if (n >= PATH_MAX_DEPTH)
		return;
	json_object_foreach((json_t *)old, k, sub) {
		if (strcmp(k, ".") == 0)
			continue;
		path[n] = k;
		json_t *nsub = new ? json_object_get(new, k) : NULL;
		if (nsub && json_object_size(sub) && json_object_size(nsub)) {
			remove_dropped(obj, sub, nsub, others, nothers, path, n + 1);
			continue;
		}
		if (nsub || owned_by_others(others, nothers, path, n + 1))
			continue;
		json_t *parent = (json_t *)value_at(obj, path, n);
		if (!parent)
			continue;
		if (str_has_prefix(k, "f:")) {
			json_object_del(parent, k + 2);
		} else {
			const json_t *item = step(parent, k);
			size_t i;
			json_t *it;
			json_array_foreach(parent, i, it)
				if (it == item) {
					json_array_remove(parent, i);
					break;
				}
		}
	}
}

/* ---- apply --------------------------------------------------------------- */

static json_t *
managed_entry(const struct kind *k, const char *manager, const char *operation, json_t *set)
{
	char ts[32];
	time_format_rfc3339(time(NULL), ts);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "manager", manager, "operation",
	    operation, "apiVersion", k->api_version, "time", ts, "fieldsType", "FieldsV1",
	    "fieldsV1", set);
}

/* ---- updates: the fields a write changes change owner ------------------- */

/* The leaves of set (fields of obj) whose value in old differs. */
static json_t *
changed_leaves(const json_t *set, const json_t *old, const json_t *obj, const char **path,
    size_t n)
{
	json_t *out = json_object(), *sub;
	const char *k;
	if (n >= PATH_MAX_DEPTH)
		return out;
	json_object_foreach((json_t *)set, k, sub) {
		path[n] = k;
		if (json_object_size(sub)) {
			json_t *c = changed_leaves(sub, old, obj, path, n + 1);
			if (json_object_size(c))
				json_object_set_new(out, k, c);
			else
				json_decref(c);
			continue;
		}
		const json_t *a = value_at(old, path, n + 1), *b = value_at(obj, path, n + 1);
		if (strcmp(k, ".") == 0 ? a == NULL : !(a && b && json_equal(a, b)))
			json_object_set_new(out, k, json_object());
	}
	return out;
}

/* into += add (both field sets). */
static void
set_union(json_t *into, const json_t *add)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)add, k, v) {
		json_t *have = json_object_get(into, k);
		if (have)
			set_union(have, v);
		else
			json_object_set_new(into, k, json_deep_copy(v));
	}
}

/* from -= the leaves of take; prunes what becomes empty. */
static void
set_minus(json_t *from, const json_t *take)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)take, k, v) {
		json_t *have = json_object_get(from, k);
		if (!have)
			continue;
		if (json_object_size(v) && json_object_size(have)) {
			set_minus(have, v);
			if (json_object_size(have))
				continue;
		} else if (json_object_size(have)) {
			continue;	/* they own fields under a leaf of ours */
		}
		json_object_del(from, k);
	}
}

unsigned
api_managed_update(const struct kind *k, const json_t *old, json_t *obj, const char *manager)
{
	const char *path[PATH_MAX_DEPTH];
	json_t *all = fields_of_object(obj, NULL, true);
	json_t *changed = changed_leaves(all, old, obj, path, 0);
	json_t *managed = json_deep_copy(obj_get_path(old, "metadata.managedFields"));
	json_t *next = json_array(), *e, *mine = NULL;
	size_t i;
	json_decref(all);
	if (json_object_size(changed) == 0) {	/* a no-op write stays one */
		json_decref(next);
		json_decref(changed);
		if (managed)
			json_object_set_new(obj_metadata(obj), "managedFields", managed);
		else
			json_object_del(obj_metadata(obj), "managedFields");
		return API_MANAGED_FIELDS;
	}
	if (!json_is_array(managed)) {
		json_decref(managed);
		managed = json_array();
	}
	json_array_foreach(managed, i, e) {
		json_t *set = json_object_get(e, "fieldsV1");
		bool is_mine = strcmp(obj_str(e, "manager"), manager) == 0 &&
		    strcmp(obj_str(e, "operation"), "Update") == 0;
		if (!json_is_object(set))
			continue;
		if (is_mine) {
			mine = json_incref(set);
			continue;
		}
		set_minus(set, changed);
		if (json_object_size(set))
			json_array_append(next, e);
	}
	if (!mine)
		mine = json_object();
	set_union(mine, changed);
	if (json_object_size(mine))
		json_array_append_new(next, managed_entry(k, manager, "Update", json_incref(mine)));
	json_object_set_new(obj_metadata(obj), "managedFields", next);
	json_decref(mine);
	json_decref(managed);
	json_decref(changed);
	return API_MANAGED_FIELDS;
}

int
api_apply(struct api *api, const struct kind *k, const char *ns, const char *name,
    json_t *applied, const char *manager, bool force, unsigned flags, json_t **out,
    bool *created, struct api_error *err)
{
	json_t *cur = NULL, *mine = fields_of_object(applied, NULL, true);
	struct api_error gerr = { 0 };
	int rc = -1;
	*created = false;
	if (api_get(api, k, ns, name, &cur, &gerr) < 0 && gerr.code != 404) {
		*err = gerr;
		goto out;
	}
	api_error_clear(&gerr);
	if (!cur) {
		json_object_set_new(obj_metadata(applied), "managedFields", json_pack("[o]",
		    managed_entry(k, manager, "Apply", json_incref(mine))));
		*created = true;
		rc = api_create(api, k, ns, json_incref(applied), flags | API_MANAGED_FIELDS, out,
		    err);
		goto out;
	}
	json_t *managed = json_deep_copy(obj_get_path(cur, "metadata.managedFields"));
	json_t *old_mine = NULL, *others[32];
	size_t nothers = 0, i;
	json_t *e;
	struct errlist conflicts = { 0 };
	const char *path[PATH_MAX_DEPTH];
	if (!json_is_array(managed)) {
		json_decref(managed);
		managed = json_array();
	}
	json_array_foreach(managed, i, e) {
		json_t *set = json_object_get(e, "fieldsV1");
		if (strcmp(obj_str(e, "manager"), manager) == 0 &&
		    strcmp(obj_str(e, "operation"), "Apply") == 0) {
			old_mine = set;
			continue;
		}
		if (!json_is_object(set) || nothers == ARRAY_SIZE(others))
			continue;
		/* the apiserver names an updater with the version it wrote */
		char *who = strcmp(obj_str(e, "operation"), "Update") == 0 ?
		    xasprintf("\"%s\" using %s", obj_str(e, "manager"), obj_str(e, "apiVersion")) :
		    xasprintf("\"%s\"", obj_str(e, "manager"));
		struct walk w = { cur, applied, set, &conflicts, who, force };
		conflicts_walk(&w, mine, set, path, 0);
		free(who);
		others[nothers++] = set;
	}
	if (conflicts.n) {
		struct buf b = BUF_INIT;
		buf_printf(&b, "Apply failed with %zu conflict%s: ", conflicts.n,
		    conflicts.n > 1 ? "s" : "");
		for (i = 0; i < conflicts.n; i++)
			buf_printf(&b, "%s%s", i ? "\n" : "", conflicts.v[i].message);
		api_error_set(err, 409, "Conflict", "%s", b.data);
		err->causes = conflicts;
		err->kind = k;
		err->name = xstrdup(name);
		buf_free(&b);
		json_decref(managed);
		goto out;
	}
	json_t *base = json_deep_copy(cur);
	if (old_mine)
		remove_dropped(base, old_mine, mine, others, nothers, path, 0);
	char *perr = NULL;
	json_t *merged = patch_strategic(base, applied, &perr);
	json_decref(base);
	if (!merged) {
		api_error_set(err, 400, "BadRequest", "%s", perr ? perr : "cannot merge");
		free(perr);
		json_decref(managed);
		goto out;
	}
	/* managedFields: the others as (maybe) reduced by force, then mine. */
	json_t *next = json_array();
	json_array_foreach(managed, i, e) {
		bool is_mine = strcmp(obj_str(e, "manager"), manager) == 0 &&
		    strcmp(obj_str(e, "operation"), "Apply") == 0;
		if (!is_mine && json_object_size(json_object_get(e, "fieldsV1")))
			json_array_append(next, e);
	}
	json_array_append_new(next, managed_entry(k, manager, "Apply", json_incref(mine)));
	json_decref(managed);
	json_object_set_new(obj_metadata(merged), "managedFields", next);
	json_object_set_new(obj_metadata(merged), "resourceVersion",
	    json_string(obj_str_at(cur, "metadata.resourceVersion")));
	rc = api_update(api, k, ns, merged, false, flags | API_MANAGED_FIELDS, out, err);
out:
	json_decref(cur);
	json_decref(mine);
	return rc;
}
