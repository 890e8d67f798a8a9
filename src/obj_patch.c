/* obj_patch.c — the three PATCH formats of the Kubernetes API: JSON merge
 * patch (RFC 7386), JSON patch (RFC 6902 with RFC 6901 pointers) and the
 * strategic merge patch of the built-in kinds. The API server's PATCH
 * handler and the CLI (`v6 patch`, apply) call these; each works on a deep
 * copy, so a failed patch leaves nothing half-applied. */
#include "obj.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
set_err(char **err, const char *fmt, ...) V6_PRINTF(2, 3);

static void
set_err(char **err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	*err = xvasprintf(fmt, ap);
	va_end(ap);
}

/* Equality as RFC 6902 "test" defines it: numbers compare by value whatever
 * their JSON spelling, objects regardless of member order. */
static bool
json_same(const json_t *a, const json_t *b)
{
	const char *key;
	json_t *v;
	size_t i;

	if (json_is_integer(a) && json_is_integer(b))
		return json_integer_value(a) == json_integer_value(b);
	if (json_is_number(a) && json_is_number(b))
		return !(json_number_value(a) < json_number_value(b) ||
		    json_number_value(a) > json_number_value(b));
	if (json_typeof(a) != json_typeof(b))
		return false;
	if (json_is_object(a)) {
		if (json_object_size(a) != json_object_size(b))
			return false;
		json_object_foreach((json_t *)a, key, v)
			if (!json_same(v, json_object_get(b, key)))
				return false;
		return true;
	}
	if (json_is_array(a)) {
		if (json_array_size(a) != json_array_size(b))
			return false;
		json_array_foreach(a, i, v)
			if (!json_same(v, json_array_get(b, i)))
				return false;
		return true;
	}
	return json_equal(a, b);
}

/* ---- RFC 7386 merge patch ---------------------------------------------- */

/* Merges patch into target, consuming the reference to target (may be
 * NULL); returns the new value. */
static json_t *
merge(json_t *target, const json_t *patch)
{
	const char *key;
	json_t *v;

	if (!json_is_object(patch)) {
		json_decref(target);
		return json_deep_copy(patch);
	}
	if (!json_is_object(target)) {
		json_decref(target);
		target = json_object();
	}
	json_object_foreach((json_t *)patch, key, v) {
		if (json_is_null(v)) {
			json_object_del(target, key);
			continue;
		}
		json_object_set_new(target, key,
		    merge(json_incref(json_object_get(target, key)), v));
	}
	return target;
}

json_t *
patch_merge(const json_t *doc, const json_t *patch, char **err)
{
	if (patch == NULL) {
		set_err(err, "merge patch: no patch document");
		return NULL;
	}
	return merge(doc ? json_deep_copy(doc) : NULL, patch);
}

/* ---- RFC 6901 pointers ------------------------------------------------- */

struct ptr {
	char **tok;
	size_t n;
};

static void
ptr_free(struct ptr *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->tok[i]);
	free(p->tok);
	p->tok = NULL;
	p->n = 0;
}

/* Splits "/a~1b/0" into unescaped tokens ("a/b", "0"). "" is the whole
 * document. Returns NULL or why the pointer is malformed. */
static const char *
ptr_parse(const char *s, struct ptr *p)
{
	p->tok = NULL;
	p->n = 0;
	if (*s == '\0')
		return NULL;
	if (*s != '/')
		return "must be empty or start with '/'";
	while (*s == '/') {
		struct buf b = BUF_INIT;
		for (s++; *s && *s != '/'; s++) {
			if (*s == '~') {
				if (s[1] != '0' && s[1] != '1') {
					buf_free(&b);
					ptr_free(p);
					return "'~' must be followed by '0' or '1'";
				}
				buf_putc(&b, s[1] == '0' ? '~' : '/');
				s++;
			} else {
				buf_putc(&b, *s);
			}
		}
		p->tok = xrealloc(p->tok, (p->n + 1) * sizeof(*p->tok));
		p->tok[p->n++] = buf_steal(&b);
	}
	return NULL;
}

/* An array index token: decimal without leading zeros, below size
 * (at most size when end_ok, where "-" also means size). */
static bool
array_index(const char *tok, size_t size, bool end_ok, size_t *out)
{
	size_t v = 0;

	if (strcmp(tok, "-") == 0) {
		*out = size;
		return end_ok;
	}
	if (*tok == '\0' || (tok[0] == '0' && tok[1] != '\0'))
		return false;
	for (const char *p = tok; *p; p++) {
		if (*p < '0' || *p > '9' || v > (SIZE_MAX - 9) / 10)
			return false;
		v = v * 10 + (size_t)(*p - '0');
	}
	*out = v;
	return end_ok ? v <= size : v < size;
}

static json_t *
child(json_t *parent, const char *tok)
{
	size_t i;

	if (json_is_object(parent))
		return json_object_get(parent, tok);
	if (json_is_array(parent) && array_index(tok, json_array_size(parent), false, &i))
		return json_array_get(parent, i);
	return NULL;
}

/* The value at the first n tokens of p, or NULL. */
static json_t *
ptr_get(json_t *root, const struct ptr *p, size_t n)
{
	json_t *cur = root;

	for (size_t i = 0; cur && i < n; i++)
		cur = child(cur, p->tok[i]);
	return cur;
}

/* ---- RFC 6902 JSON patch ----------------------------------------------- */

struct jpatch {
	json_t *root;		/* the working copy */
	const char *path;	/* the current operation's "path", as written */
	const char *from;
	struct ptr p, f;	/* path and from, parsed */
	const json_t *value;
	char *why;		/* set by a failing operation */
};

static int
jp_fail(struct jpatch *jp, const char *fmt, ...) V6_PRINTF(2, 3);

static int
jp_fail(struct jpatch *jp, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	jp->why = xvasprintf(fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int
missing(struct jpatch *jp, const char *what, const char *ptr)
{
	return jp_fail(jp, "%s \"%s\" does not exist", what, ptr);
}

/* Inserts value (consumed) at pointer p, as "add" does. */
static int
put(struct jpatch *jp, const struct ptr *p, const char *raw, json_t *value)
{
	json_t *parent;
	const char *last;
	size_t i;

	if (p->n == 0) {
		json_decref(jp->root);
		jp->root = value;
		return 0;
	}
	parent = ptr_get(jp->root, p, p->n - 1);
	last = p->tok[p->n - 1];
	if (json_is_object(parent)) {
		json_object_set_new(parent, last, value);
		return 0;
	}
	if (json_is_array(parent)) {
		if (array_index(last, json_array_size(parent), true, &i)) {
			json_array_insert_new(parent, i, value);
			return 0;
		}
		json_decref(value);
		return jp_fail(jp, "path \"%s\": array index \"%s\" is invalid or "
		    "out of bounds (array size %zu)", raw, last, json_array_size(parent));
	}
	json_decref(value);
	if (parent == NULL)
		return jp_fail(jp, "path \"%s\": parent does not exist", raw);
	return jp_fail(jp, "path \"%s\": parent is not an object or array", raw);
}

/* Detaches the value at p and returns it (a reference the caller owns). */
static json_t *
take(struct jpatch *jp, const struct ptr *p)
{
	json_t *parent = ptr_get(jp->root, p, p->n - 1);
	json_t *v = child(parent, p->tok[p->n - 1]);
	size_t i;

	if (v == NULL)
		return NULL;
	json_incref(v);
	if (json_is_object(parent)) {
		json_object_del(parent, p->tok[p->n - 1]);
	} else {
		array_index(p->tok[p->n - 1], json_array_size(parent), false, &i);
		json_array_remove(parent, i);
	}
	return v;
}

static int
op_add(struct jpatch *jp)
{
	return put(jp, &jp->p, jp->path, json_deep_copy(jp->value));
}

static int
op_remove(struct jpatch *jp)
{
	json_t *v;

	if (jp->p.n == 0)
		return jp_fail(jp, "path \"\": cannot remove the whole document");
	if ((v = take(jp, &jp->p)) == NULL)
		return missing(jp, "path", jp->path);
	json_decref(v);
	return 0;
}

static int
op_replace(struct jpatch *jp)
{
	json_t *v;

	if (jp->p.n == 0) {
		json_decref(jp->root);
		jp->root = json_deep_copy(jp->value);
		return 0;
	}
	if ((v = take(jp, &jp->p)) == NULL)
		return missing(jp, "path", jp->path);
	json_decref(v);
	return put(jp, &jp->p, jp->path, json_deep_copy(jp->value));
}

static bool
ptr_is_proper_prefix(const struct ptr *a, const struct ptr *b)
{
	if (a->n >= b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->tok[i], b->tok[i]) != 0)
			return false;
	return true;
}

static int
op_move(struct jpatch *jp)
{
	json_t *v;

	if (ptr_get(jp->root, &jp->f, jp->f.n) == NULL)
		return missing(jp, "from", jp->from);
	if (ptr_is_proper_prefix(&jp->f, &jp->p))
		return jp_fail(jp, "cannot move \"%s\" into its own child \"%s\"",
		    jp->from, jp->path);
	if (strcmp(jp->from, jp->path) == 0)
		return 0;
	if (jp->f.n == 0)	/* only reachable with path == from */
		return 0;
	v = take(jp, &jp->f);
	return put(jp, &jp->p, jp->path, v);
}

static int
op_copy(struct jpatch *jp)
{
	json_t *v = ptr_get(jp->root, &jp->f, jp->f.n);

	if (v == NULL)
		return missing(jp, "from", jp->from);
	return put(jp, &jp->p, jp->path, json_deep_copy(v));
}

static int
op_test(struct jpatch *jp)
{
	json_t *v = ptr_get(jp->root, &jp->p, jp->p.n);
	char *want;
	int rc;

	if (v == NULL)
		return missing(jp, "path", jp->path);
	if (json_same(v, jp->value))
		return 0;
	want = json_dumps(jp->value, JSON_ENCODE_ANY | JSON_COMPACT);
	rc = jp_fail(jp, "test failed: value at path \"%s\" is not equal to %s",
	    jp->path, want ? want : "?");
	free(want);
	return rc;
}

static const struct jp_op {
	const char *name;
	bool needs_value;
	bool needs_from;
	int (*apply)(struct jpatch *jp);
} jp_ops[] = {
	{ "add", true, false, op_add },
	{ "remove", false, false, op_remove },
	{ "replace", true, false, op_replace },
	{ "move", false, true, op_move },
	{ "copy", false, true, op_copy },
	{ "test", true, false, op_test },
};

static const struct jp_op *
jp_op_find(const char *name)
{
	for (size_t i = 0; name && i < ARRAY_SIZE(jp_ops); i++)
		if (strcmp(jp_ops[i].name, name) == 0)
			return &jp_ops[i];
	return NULL;
}

/* Checks the members one operation needs and parses its pointers. */
static int
jp_prepare(struct jpatch *jp, const json_t *op, const struct jp_op *o)
{
	const char *why;

	jp->path = json_string_value(json_object_get(op, "path"));
	jp->from = json_string_value(json_object_get(op, "from"));
	jp->value = json_object_get(op, "value");
	if (jp->path == NULL)
		return jp_fail(jp, "missing \"path\" (a string)");
	if (o->needs_value && jp->value == NULL)
		return jp_fail(jp, "missing \"value\"");
	if (o->needs_from && jp->from == NULL)
		return jp_fail(jp, "missing \"from\" (a string)");
	if ((why = ptr_parse(jp->path, &jp->p)) != NULL)
		return jp_fail(jp, "path \"%s\": %s", jp->path, why);
	if (o->needs_from && (why = ptr_parse(jp->from, &jp->f)) != NULL)
		return jp_fail(jp, "from \"%s\": %s", jp->from, why);
	return 0;
}

json_t *
patch_json(const json_t *doc, const json_t *ops, char **err)
{
	struct jpatch jp = { 0 };
	const struct jp_op *o = NULL;
	const json_t *op;
	const char *name = "";
	size_t i;

	if (!json_is_array(ops)) {
		set_err(err, "JSON patch must be an array of operations");
		return NULL;
	}
	jp.root = doc ? json_deep_copy(doc) : json_null();
	json_array_foreach(ops, i, op) {
		name = json_string_value(json_object_get(op, "op"));
		if (!json_is_object(op) || (o = jp_op_find(name)) == NULL) {
			set_err(err, "operation %zu: \"op\" must be one of add, remove, "
			    "replace, move, copy, test", i);
			goto fail;
		}
		if (jp_prepare(&jp, op, o) < 0 || o->apply(&jp) < 0)
			goto fail_op;
		ptr_free(&jp.p);
		ptr_free(&jp.f);
	}
	return jp.root;
fail_op:
	set_err(err, "operation %zu (%s): %s", i, name, jp.why);
fail:
	free(jp.why);
	ptr_free(&jp.p);
	ptr_free(&jp.f);
	json_decref(jp.root);
	return NULL;
}

/* ---- strategic merge patch --------------------------------------------- */

/* The lists of the built-in kinds that merge element-wise instead of being
 * replaced, keyed by field name (and the name of the map holding it when
 * the field name alone is ambiguous). */
static const struct merge_list {
	const char *field;
	const char *parent;	/* NULL: wherever the field appears */
	const char *key;	/* NULL: a list of scalars merged as a set */
	const char *alt_key;	/* used when no item carries key */
} merge_lists[] = {
	{ "containers", NULL, "name", NULL },
	{ "initContainers", NULL, "name", NULL },
	{ "ephemeralContainers", NULL, "name", NULL },
	{ "env", NULL, "name", NULL },
	{ "volumes", NULL, "name", NULL },
	{ "volumeMounts", NULL, "mountPath", NULL },
	{ "volumeDevices", NULL, "devicePath", NULL },
	{ "imagePullSecrets", NULL, "name", NULL },
	/* container ports by containerPort, Service ports by port */
	{ "ports", NULL, "containerPort", "port" },
	{ "hostAliases", NULL, "ip", NULL },
	{ "topologySpreadConstraints", NULL, "topologyKey", NULL },
	{ "ownerReferences", "metadata", "uid", NULL },
	{ "conditions", NULL, "type", NULL },
	{ "finalizers", "metadata", NULL, NULL },
};

#define DIRECTIVE		"$patch"
#define RETAIN_KEYS		"$retainKeys"
#define DELETE_PRIMITIVE	"$deleteFromPrimitiveList/"
#define SET_ORDER		"$setElementOrder/"

struct sm {
	char *err;
};

static const struct merge_list *
merge_list_find(const char *field, const char *parent)
{
	for (size_t i = 0; i < ARRAY_SIZE(merge_lists); i++) {
		const struct merge_list *m = &merge_lists[i];
		if (strcmp(m->field, field) == 0 &&
		    (m->parent == NULL || strcmp(m->parent, parent) == 0))
			return m;
	}
	return NULL;
}

bool
patch_list_merges(const char *field, const char *parent, const char **key,
    const char **alt_key)
{
	const struct merge_list *m = merge_list_find(field, parent ? parent : "");
	if (m == NULL)
		return false;
	*key = m->key;
	*alt_key = m->alt_key;
	return true;
}

static int
sm_fail(struct sm *c, const char *path, const char *fmt, ...) V6_PRINTF(3, 4);

static int
sm_fail(struct sm *c, const char *path, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	c->err = *path ? xasprintf("%s: %s", path, msg) : xstrdup(msg);
	free(msg);
	return -EINVAL;
}

static char *
path_field(const char *path, const char *field)
{
	return *path ? xasprintf("%s.%s", path, field) : xstrdup(field);
}

static bool
is_directive_key(const char *k)
{
	return strcmp(k, DIRECTIVE) == 0 || strcmp(k, RETAIN_KEYS) == 0 ||
	    str_has_prefix(k, DELETE_PRIMITIVE) || str_has_prefix(k, SET_ORDER);
}

static int sm_value(struct sm *c, json_t *orig, const json_t *patch,
    const char *field, const char *parent, const char *path, json_t **out);

/* "$retainKeys": drop the fields of orig the list does not name. */
static int
sm_retain_keys(struct sm *c, json_t *orig, const json_t *patch, const char *path)
{
	const json_t *keep = json_object_get(patch, RETAIN_KEYS), *k;
	const char *key;
	json_t *v;
	void *tmp;
	size_t i;

	if (keep == NULL)
		return 0;
	if (!json_is_array(keep))
		return sm_fail(c, path, "%s must be a list of field names", RETAIN_KEYS);
	json_array_foreach(keep, i, k)
		if (!json_is_string(k))
			return sm_fail(c, path, "%s must be a list of field names",
			    RETAIN_KEYS);
	json_object_foreach((json_t *)patch, key, v) {
		bool listed = false;
		json_array_foreach(keep, i, k)
			listed = listed || strcmp(json_string_value(k), key) == 0;
		if (!listed && !json_is_null(v) && !is_directive_key(key))
			return sm_fail(c, path, "field \"%s\" is not in the %s list",
			    key, RETAIN_KEYS);
	}
	json_object_foreach_safe(orig, tmp, key, v) {
		bool listed = false;
		json_array_foreach(keep, i, k)
			listed = listed || strcmp(json_string_value(k), key) == 0;
		if (!listed)
			json_object_del(orig, key);
	}
	return 0;
}

static bool
array_contains(const json_t *a, const json_t *v)
{
	size_t i;
	json_t *x;

	json_array_foreach(a, i, x)
		if (json_same(x, v))
			return true;
	return false;
}

/* "$deleteFromPrimitiveList/<field>": remove those values from orig.field. */
static int
sm_delete_from_lists(struct sm *c, json_t *orig, const json_t *patch, const char *path)
{
	const char *key;
	json_t *del, *list;

	json_object_foreach((json_t *)patch, key, del) {
		if (!str_has_prefix(key, DELETE_PRIMITIVE))
			continue;
		if (!json_is_array(del))
			return sm_fail(c, path, "%s must be a list", key);
		list = json_object_get(orig, key + strlen(DELETE_PRIMITIVE));
		for (size_t i = json_array_size(list); i-- > 0;)
			if (array_contains(del, json_array_get(list, i)))
				json_array_remove(list, i);
	}
	return 0;
}

/* What "$setElementOrder" compares an item by: its merge key, or itself. */
static const json_t *
order_id(const json_t *item, const char *key)
{
	return key && json_is_object(item) ? json_object_get(item, key) : item;
}

static size_t
order_rank(const json_t *order, const json_t *item, const char *key)
{
	const json_t *id = order_id(item, key);
	size_t i;
	json_t *o;

	json_array_foreach(order, i, o)
		if (id && json_same(order_id(o, key), id))
			return i;
	return SIZE_MAX;
}

/* Puts the items named in order into that order, using the slots they
 * already occupy; other items keep their positions. */
static void
reorder(json_t *list, const json_t *order, const char *key)
{
	size_t n = json_array_size(list), m = 0, *slot = xcalloc(n, sizeof(*slot));
	json_t **items = xcalloc(n, sizeof(*items));

	for (size_t i = 0; i < n; i++)
		if (order_rank(order, json_array_get(list, i), key) != SIZE_MAX) {
			slot[m] = i;
			items[m++] = json_incref(json_array_get(list, i));
		}
	for (size_t i = 1; i < m; i++)	/* insertion sort by rank: stable */
		for (size_t j = i; j > 0 && order_rank(order, items[j - 1], key) >
		    order_rank(order, items[j], key); j--) {
			json_t *t = items[j];
			items[j] = items[j - 1];
			items[j - 1] = t;
		}
	for (size_t i = 0; i < m; i++)
		json_array_set_new(list, slot[i], items[i]);
	free(slot);
	free(items);
}

static int
sm_set_order(struct sm *c, json_t *orig, const json_t *patch, const char *self,
    const char *path)
{
	const char *key, *field;
	const struct merge_list *m;
	json_t *order, *list;

	json_object_foreach((json_t *)patch, key, order) {
		if (!str_has_prefix(key, SET_ORDER))
			continue;
		if (!json_is_array(order))
			return sm_fail(c, path, "%s must be a list", key);
		field = key + strlen(SET_ORDER);
		list = json_object_get(orig, field);
		m = merge_list_find(field, self);
		if (json_is_array(list))
			reorder(list, order, m ? m->key : NULL);
	}
	return 0;
}

/* Merges the patch map into orig (an object we own), field by field. self
 * is the name of the field holding orig, for the merge-list table. */
static int
sm_map(struct sm *c, json_t *orig, const json_t *patch, const char *self,
    const char *path)
{
	const char *key;
	json_t *pv, *nv;
	char *sub;
	int rc;

	if (sm_retain_keys(c, orig, patch, path) < 0 ||
	    sm_delete_from_lists(c, orig, patch, path) < 0)
		return -EINVAL;
	json_object_foreach((json_t *)patch, key, pv) {
		if (is_directive_key(key))
			continue;
		sub = path_field(path, key);
		rc = sm_value(c, json_object_get(orig, key), pv, key, self, sub, &nv);
		free(sub);
		if (rc < 0)
			return rc;
		if (nv == NULL)
			json_object_del(orig, key);
		else
			json_object_set_new(orig, key, nv);
	}
	return sm_set_order(c, orig, patch, self, path);
}

/* The merge key of a list: m->key, or m->alt_key when no item has m->key. */
static const char *
list_key(const struct merge_list *m, const json_t *a, const json_t *b)
{
	size_t i;
	json_t *v;

	if (m->alt_key == NULL)
		return m->key;
	json_array_foreach(a, i, v)
		if (json_object_get(v, m->key))
			return m->key;
	json_array_foreach(b, i, v)
		if (json_object_get(v, m->key))
			return m->key;
	return m->alt_key;
}

const char *
patch_strategic_list_key(const char *field, const char *parent, const json_t *a,
    const json_t *b)
{
	const struct merge_list *m = merge_list_find(field, parent);
	return m ? list_key(m, a, b) : NULL;
}

static void
delete_by_key(json_t *list, const char *key, const json_t *kv)
{
	for (size_t i = json_array_size(list); i-- > 0;)
		if (json_same(json_object_get(json_array_get(list, i), key), kv))
			json_array_remove(list, i);
}

/* First pass over a keyed patch list: "$patch" elements. Sets *replace
 * when the whole list is to be replaced. */
static int
sm_list_directives(struct sm *c, json_t *out, const json_t *patch,
    const char *key, const char *path, bool *replace)
{
	const char *d;
	const json_t *kv;
	json_t *e;
	size_t i;

	json_array_foreach(patch, i, e) {
		if (!json_is_object(e))
			return sm_fail(c, path, "item %zu must be an object", i);
		if ((d = json_string_value(json_object_get(e, DIRECTIVE))) == NULL)
			continue;
		if (strcmp(d, "replace") == 0) {
			*replace = true;
		} else if (strcmp(d, "delete") == 0) {
			if ((kv = json_object_get(e, key)) == NULL)
				return sm_fail(c, path, "item %zu: \"$patch\": \"delete\" "
				    "needs the merge key \"%s\"", i, key);
			delete_by_key(out, key, kv);
		} else if (strcmp(d, "merge") != 0) {
			return sm_fail(c, path, "item %zu: unknown \"$patch\" directive "
			    "\"%s\"", i, d);
		}
	}
	return 0;
}

static json_t *
find_by_key(json_t *list, const char *key, const json_t *kv)
{
	size_t i;
	json_t *e;

	json_array_foreach(list, i, e)
		if (json_same(json_object_get(e, key), kv))
			return e;
	return NULL;
}

/* A list of maps merged by key: matching items merge recursively, new items
 * are appended in patch order. */
static int
sm_keyed_list(struct sm *c, const json_t *orig, const json_t *patch,
    const struct merge_list *m, const char *path, json_t *out)
{
	const char *key = list_key(m, orig, patch);
	bool replace = false;
	const json_t *kv;
	json_t *e, *dst;
	size_t i;
	char *sub;
	int rc;

	json_array_extend(out, (json_t *)orig);
	if (sm_list_directives(c, out, patch, key, path, &replace) < 0)
		return -EINVAL;
	if (replace)
		json_array_clear(out);
	json_array_foreach(patch, i, e) {
		if (json_object_get(e, DIRECTIVE) != NULL)
			continue;
		if ((kv = json_object_get(e, key)) == NULL)
			return sm_fail(c, path, "item %zu does not contain the merge "
			    "key \"%s\"", i, key);
		if ((dst = find_by_key(out, key, kv)) == NULL) {
			dst = json_object();
			json_array_append_new(out, dst);
		}
		sub = xasprintf("%s[%zu]", path, i);
		rc = sm_map(c, dst, e, m->field, sub);
		free(sub);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* A list of scalars merged as a set union, orig's order first. */
static void
sm_set_list(const json_t *orig, const json_t *patch, json_t *out)
{
	size_t i;
	json_t *e;

	json_array_extend(out, (json_t *)orig);
	json_array_foreach(patch, i, e)
		if (!array_contains(out, e))
			json_array_append_new(out, json_deep_copy(e));
}

static int
sm_list(struct sm *c, json_t *orig, const json_t *patch, const char *field,
    const char *parent, const char *path, json_t **out)
{
	const struct merge_list *m = merge_list_find(field, parent);
	json_t *base = json_is_array(orig) ? orig : NULL;

	if (m == NULL) {	/* not a merging list: the patch replaces it */
		*out = json_deep_copy(patch);
		return 0;
	}
	*out = json_array();
	if (m->key == NULL)
		sm_set_list(base, patch, *out);
	else if (sm_keyed_list(c, base, patch, m, path, *out) < 0)
		goto fail;
	return 0;
fail:
	json_decref(*out);
	*out = NULL;
	return -EINVAL;
}

/* The merged value of one field: *out is a new reference, or NULL when the
 * field is to be removed. orig (borrowed, may be NULL) may be modified. */
static int
sm_value(struct sm *c, json_t *orig, const json_t *patch, const char *field,
    const char *parent, const char *path, json_t **out)
{
	const char *d = json_string_value(json_object_get(patch, DIRECTIVE));

	*out = NULL;
	if (json_is_null(patch))
		return 0;
	if (json_is_array(patch))
		return sm_list(c, orig, patch, field, parent, path, out);
	if (!json_is_object(patch)) {
		*out = json_deep_copy(patch);
		return 0;
	}
	if (d && strcmp(d, "delete") == 0)
		return 0;
	if (d && strcmp(d, "replace") != 0 && strcmp(d, "merge") != 0)
		return sm_fail(c, path, "unknown \"$patch\" directive \"%s\"", d);
	if (json_object_get(patch, DIRECTIVE) && d == NULL)
		return sm_fail(c, path, "\"$patch\" must be a string");
	*out = json_is_object(orig) && !(d && strcmp(d, "replace") == 0) ?
	    json_incref(orig) : json_object();
	if (sm_map(c, *out, patch, field, path) < 0) {
		json_decref(*out);
		*out = NULL;
		return -EINVAL;
	}
	return 0;
}

json_t *
patch_strategic(const json_t *doc, const json_t *patch, char **err)
{
	struct sm c = { NULL };
	json_t *copy, *out;

	if (!json_is_object(patch)) {
		set_err(err, "strategic merge patch must be a JSON object");
		return NULL;
	}
	copy = json_is_object(doc) ? json_deep_copy(doc) : json_object();
	if (sm_value(&c, copy, patch, "", "", "", &out) < 0) {
		json_decref(copy);
		set_err(err, "%s", c.err);
		free(c.err);
		return NULL;
	}
	json_decref(copy);
	return out ? out : json_object();
}
