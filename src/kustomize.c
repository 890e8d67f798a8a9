/* kustomize.c — Kustomize built in: reads a kustomization directory,
 * accumulates its resources (files, and directories built recursively as
 * bases), components, generators and transformers in kustomize's order,
 * then the content-hash suffixes, the name-reference fix-up and the legacy
 * output order. Called by `v6 kustomize`, `v6 apply|diff -k` and the
 * GitOps Applications (kustomize.h). */
#include "kustomize.h"
#include "kustomize_int.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "obj.h"
#include "util.h"

/* The fields of a Kustomization: supported ones, and kustomize's other
 * fields, which are refused by name rather than silently ignored. */
static const char *const kust_supported[] = {
	"apiVersion", "kind", "metadata", "resources", "bases", "components",
	"namespace", "namePrefix", "nameSuffix", "commonLabels", "labels",
	"commonAnnotations", "images", "replicas", "patches",
	"patchesStrategicMerge", "patchesJson6902", "configMapGenerator",
	"secretGenerator", "generatorOptions", NULL,
};
static const char *const kust_unsupported[] = {
	"vars", "replacements", "helmCharts", "helmGlobals", "generators",
	"transformers", "validators", "configurations", "crds", "openapi",
	"sortOptions", "buildMetadata", "helmChartInflationGenerator",
	"imageTags", NULL,
};
static const char *const kust_names[] = {
	"kustomization.yaml", "kustomization.yml", "Kustomization",
};

/* Go's encoding/json matches field names case-insensitively, and so
 * does kustomize: the canonical name of s in list, or NULL. */
static const char *
in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (!strcasecmp(s, *list))
			return *list;
	return NULL;
}

/* The fields of the entries of list fields (and of their "target" /
 * "options"), checked as strictly as Go's decoding of kustomize's types. */
#define GEN_FIELDS "name", "namespace", "behavior", "files", "literals", "envs", \
	"env", "type", "options"
#define OPT_FIELDS "labels", "annotations", "disableNameSuffixHash", "immutable"
#define TARGET_FIELDS "group", "version", "kind", "name", "namespace", \
	"labelSelector", "annotationSelector"
static const char *const patch_fields[] = { "path", "patch", "target", "options", NULL };
static const char *const target_fields[] = { TARGET_FIELDS, NULL };
static const char *const json6902_fields[] = { "path", "patch", "target", NULL };
static const char *const image_fields[] = { "name", "newName", "newTag", "digest",
	"tagSuffix", NULL };
static const char *const replica_fields[] = { "name", "count", NULL };
static const char *const gen_fields[] = { GEN_FIELDS, NULL };
static const char *const opt_fields[] = { OPT_FIELDS, NULL };
static const char *const label_fields[] = { "pairs", "includeSelectors",
	"includeTemplates", "fields", NULL };

static const struct entry_rule {
	const char *field;		/* list field of the kustomization */
	const char *const *keys;
	const char *sub;		/* a mapping inside each entry */
	const char *const *sub_keys;
} entry_rules[] = {
	{ "patches", patch_fields, "target", target_fields },
	{ "patchesJson6902", json6902_fields, "target", target_fields },
	{ "images", image_fields, NULL, NULL },
	{ "replicas", replica_fields, NULL, NULL },
	{ "configMapGenerator", gen_fields, "options", opt_fields },
	{ "secretGenerator", gen_fields, "options", opt_fields },
	{ "labels", label_fields, NULL, NULL },
};

static int
check_keys(json_t *o, const char *const *keys, const char *path, char **err)
{
	const char *key;
	json_t *v;
	void *tmp;
	if (!json_is_object(o))
		return 0;
	json_object_foreach_safe(o, tmp, key, v) {
		const char *canon = in_list(key, keys);
		if (!canon) {
			*err = xasprintf("%s: invalid Kustomization: json: unknown field \"%s\"",
			    path, key);
			return -EINVAL;
		}
		if (strcmp(canon, key)) {
			json_object_set(o, canon, v);
			json_object_del(o, key);
		}
	}
	return 0;
}

static int
check_entries(json_t *k, const char *path, char **err)
{
	static const char *const generator_options[] = { OPT_FIELDS, NULL };
	int rc = check_keys(json_object_get(k, "generatorOptions"), generator_options, path,
	    err);
	for (size_t r = 0; r < ARRAY_SIZE(entry_rules) && rc == 0; r++) {
		const struct entry_rule *er = &entry_rules[r];
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(k, er->field), i, e) {
			rc = check_keys(e, er->keys, path, err);
			if (rc == 0 && er->sub)
				rc = check_keys(json_object_get(e, er->sub), er->sub_keys, path, err);
			if (rc < 0)
				break;
			if (json_object_get(e, "fields")) {
				*err = xasprintf("%s: invalid Kustomization: %s[%zu].fields (custom "
				    "field specs) is not supported by v6's built-in kustomize", path,
				    er->field, i);
				return -ENOTSUP;
			}
		}
	}
	return rc;
}

/* The typed fields of kustomize's Go structs, checked as encoding/json
 * decodes them: a value of another JSON type (null excepted) is kubectl's
 * "cannot unmarshal bool into Go struct field Kustomization.namespace of
 * type string". entry: the list whose entries hold the field (NULL: the
 * kustomization itself); sub: a mapping inside each entry (or, without
 * entry, inside the kustomization). */
enum ftype { F_STR, F_STRS, F_MAP, F_BOOL, F_INT };

static const struct typed {
	const char *gostruct, *entry, *sub, *field;
	enum ftype t;
} typed_fields[] = {
	{ "Kustomization", NULL, NULL, "namespace", F_STR },
	{ "Kustomization", NULL, NULL, "namePrefix", F_STR },
	{ "Kustomization", NULL, NULL, "nameSuffix", F_STR },
	{ "Kustomization", NULL, NULL, "commonLabels", F_MAP },
	{ "Kustomization", NULL, NULL, "commonAnnotations", F_MAP },
	{ "Kustomization", NULL, NULL, "resources", F_STRS },
	{ "Kustomization", NULL, NULL, "components", F_STRS },
	{ "Kustomization", NULL, NULL, "bases", F_STRS },
	{ "Label", "labels", NULL, "pairs", F_MAP },
	{ "Label", "labels", NULL, "includeSelectors", F_BOOL },
	{ "Label", "labels", NULL, "includeTemplates", F_BOOL },
	{ "Image", "images", NULL, "name", F_STR },
	{ "Image", "images", NULL, "newName", F_STR },
	{ "Image", "images", NULL, "newTag", F_STR },
	{ "Image", "images", NULL, "digest", F_STR },
	{ "Image", "images", NULL, "tagSuffix", F_STR },
	{ "Replica", "replicas", NULL, "name", F_STR },
	{ "Replica", "replicas", NULL, "count", F_INT },
	{ "Patch", "patches", NULL, "path", F_STR },
	{ "Patch", "patches", NULL, "patch", F_STR },
	{ "GeneratorOptions", NULL, "generatorOptions", "labels", F_MAP },
	{ "GeneratorOptions", NULL, "generatorOptions", "annotations", F_MAP },
	{ "GeneratorOptions", NULL, "generatorOptions", "disableNameSuffixHash", F_BOOL },
	{ "GeneratorOptions", NULL, "generatorOptions", "immutable", F_BOOL },
#define GEN_TYPED(S, L) \
	{ S, L, NULL, "name", F_STR }, { S, L, NULL, "namespace", F_STR }, \
	{ S, L, NULL, "behavior", F_STR }, { S, L, NULL, "files", F_STRS }, \
	{ S, L, NULL, "literals", F_STRS }, { S, L, NULL, "envs", F_STRS }, \
	{ S, L, NULL, "env", F_STR }, \
	{ "GeneratorOptions", L, "options", "labels", F_MAP }, \
	{ "GeneratorOptions", L, "options", "annotations", F_MAP }, \
	{ "GeneratorOptions", L, "options", "disableNameSuffixHash", F_BOOL }, \
	{ "GeneratorOptions", L, "options", "immutable", F_BOOL }
	GEN_TYPED("ConfigMapArgs", "configMapGenerator"),
	GEN_TYPED("SecretArgs", "secretGenerator"),
	{ "SecretArgs", "secretGenerator", NULL, "type", F_STR },
#undef GEN_TYPED
};

/* encoding/json's name of v's JSON type, as its errors say it. */
static const char *
json_type_word(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "object";
	case JSON_ARRAY: return "array";
	case JSON_STRING: return "string";
	case JSON_INTEGER: case JSON_REAL: return "number";
	default: return "bool";
	}
}

/* The first value of v (of type t) of a wrong JSON type, or NULL. */
static const json_t *
mistyped(const json_t *v, enum ftype t)
{
	const json_t *x;
	const char *key;
	size_t i;
	if (!v || json_is_null(v))
		return NULL;
	switch (t) {
	case F_STR:
		return json_is_string(v) ? NULL : v;
	case F_BOOL:
		return json_is_boolean(v) ? NULL : v;
	case F_INT:
		return json_is_integer(v) ? NULL : v;
	case F_STRS:
		if (!json_is_array(v))
			return v;
		json_array_foreach(v, i, x)
			if (!json_is_string(x) && !json_is_null(x))
				return x;
		return NULL;
	case F_MAP:
		if (!json_is_object(v))
			return v;
		json_object_foreach((json_t *)v, key, x)
			if (!json_is_string(x) && !json_is_null(x))
				return x;
		return NULL;
	}
	return NULL;
}

static int
type_err(const struct typed *f, const json_t *v, const json_t *bad, const char *path,
    char **err)
{
	static const char *const go[] = { "string", "[]string", "map[string]string", "bool",
		"int64" };
	/* an element of a list or map is named by the field, typed by the element */
	bool elem = bad != v;
	const char *want = elem ? "string" : go[f->t];
	if (!elem && f->t == F_STRS && !json_is_array(v))
		want = "[]string";
	*err = xasprintf("%s: invalid Kustomization: json: cannot unmarshal %s into Go struct "
	    "field %s.%s%s%s%s%s of type %s", path, json_type_word(bad), f->gostruct,
	    f->entry ? f->entry : "", f->entry ? "." : "", f->sub ? f->sub : "",
	    f->sub ? "." : "", f->field, want);
	return -EINVAL;
}

static int
check_types(const json_t *k, const char *path, char **err)
{
	for (size_t i = 0; i < ARRAY_SIZE(typed_fields); i++) {
		const struct typed *f = &typed_fields[i];
		const json_t *e, *list = f->entry ? json_object_get(k, f->entry) : NULL;
		size_t j, n = f->entry ? json_array_size(list) : 1;
		for (j = 0; j < n; j++) {
			e = f->entry ? json_array_get(list, j) : k;
			if (f->sub)
				e = json_object_get(e, f->sub);
			const json_t *v = json_object_get(e, f->field), *bad = mistyped(v, f->t);
			if (bad)
				return type_err(f, v, bad, path, err);
		}
	}
	return 0;
}

/* Renames the fields of k to their canonical spelling ("nameprefix" ->
 * "namePrefix"); 0, or -EINVAL with *err for a field kustomize does not
 * know and -ENOTSUP for one V6 does not implement. */
static int
canonical_fields(json_t *k, const char *path, char **err)
{
	const char *key;
	json_t *v;
	void *tmp;
	json_object_foreach_safe(k, tmp, key, v) {
		const char *canon = in_list(key, kust_supported);
		if (in_list(key, kust_unsupported)) {
			*err = xasprintf("%s: invalid Kustomization: field \"%s\" is not supported "
			    "by v6's built-in kustomize", path, key);
			return -ENOTSUP;
		}
		if (!canon) {
			*err = xasprintf("%s: invalid Kustomization: json: unknown field \"%s\"",
			    path, key);
			return -EINVAL;
		}
		if (strcmp(canon, key)) {
			json_object_set(k, canon, v);
			json_object_del(k, key);
		}
	}
	int rc = check_entries(k, path, err);
	return rc < 0 ? rc : check_types(k, path, err);
}

void
kz_add(struct kresmap *m, json_t *obj)
{
	m->v = xrealloc(m->v, (m->n + 1) * sizeof *m->v);
	m->v[m->n++] = (struct kres){ obj, json_array(), json_array(), json_array(), false,
	    false };
}

void
kz_remove(struct kresmap *m, size_t i)
{
	json_decref(m->v[i].obj);
	json_decref(m->v[i].prev);
	json_decref(m->v[i].prefixes);
	json_decref(m->v[i].suffixes);
	memmove(&m->v[i], &m->v[i + 1], (m->n - i - 1) * sizeof *m->v);
	m->n--;
}

void
kz_map_free(struct kresmap *m)
{
	while (m->n)
		kz_remove(m, m->n - 1);
	free(m->v);
	m->v = NULL;
}

void
kz_store_prev(struct kres *r)
{
	json_array_append_new(r->prev, json_pack("{s:s, s:s}", "name", obj_name(r->obj),
	    "namespace", obj_namespace(r->obj)));
}

const char *
kz_eff_ns(const char *ns)
{
	return ns[0] ? ns : "default";
}

bool
kz_had_id(const struct kres *r, const char *name, const char *ns)
{
	if (!strcmp(obj_name(r->obj), name) &&
	    (!ns || !strcmp(kz_eff_ns(obj_namespace(r->obj)), kz_eff_ns(ns))))
		return true;
	size_t i;
	json_t *p;
	json_array_foreach(r->prev, i, p)
		if (!strcmp(obj_str(p, "name"), name) &&
		    (!ns || !strcmp(kz_eff_ns(obj_str(p, "namespace")), kz_eff_ns(ns))))
			return true;
	return false;
}

int
kz_list(const struct kust *k, const char *field, json_t **list, char **err)
{
	*list = json_object_get(k->k, field);
	if (*list && !json_is_array(*list)) {
		*err = xasprintf("%s: %s must be a list", k->file, field);
		return -EINVAL;
	}
	return 0;
}

int
kz_read(const char *dir, const char *rel, char **out, size_t *len, char **err)
{
	char *path = rel[0] == '/' || !dir[0] ? xstrdup(rel) : xasprintf("%s/%s", dir, rel);
	int rc = file_read_all(path, out, len);
	if (rc < 0)
		*err = xasprintf("%s: %s", path, strerror(-rc));
	free(path);
	return rc;
}

/* Indents every line of text by two spaces under "k:" so that the
 * manifest parser (which takes mappings) reads a top-level sequence. */
static char *
wrap_sequence(const char *text, size_t len)
{
	struct buf b = { 0 };
	buf_puts(&b, "k:\n");
	bool bol = true;
	for (size_t i = 0; i < len; i++) {
		if (bol)
			buf_puts(&b, "  ");
		buf_putc(&b, text[i]);
		bol = text[i] == '\n';
	}
	return buf_steal(&b);
}

static bool
starts_sequence(const char *text, size_t len)
{
	size_t i = 0;
	while (i < len) {
		while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r'))
			i++;
		if (i < len && (text[i] == '#' || text[i] == '\n' || !strncmp(text + i, "---", 3))) {
			while (i < len && text[i] != '\n')
				i++;
			i++;
			continue;
		}
		return i < len && (text[i] == '[' || (text[i] == '-' && (i + 1 == len ||
		    text[i + 1] == ' ' || text[i + 1] == '\n')));
	}
	return false;
}

int
kz_parse(const char *text, size_t len, const char *file, bool yaml11, json_t **out,
    char **err)
{
	struct obj_docs docs = { 0 };
	struct errlist errs = { 0 };
	bool seq = starts_sequence(text, len);
	char *wrapped = seq ? wrap_sequence(text, len) : NULL;
	int (*parse)(const char *, size_t, struct obj_docs *, struct errlist *) =
	    yaml11 ? obj_parse_yaml11 : obj_parse;
	int rc = seq ? parse(wrapped, strlen(wrapped), &docs, &errs)
	    : parse(text, len, &docs, &errs);
	free(wrapped);
	if (rc < 0 || errs.n) {
		*err = field_err_format(&errs.v[0], file);
		errlist_free(&errs);
		obj_docs_free(&docs);
		return -EINVAL;
	}
	*out = json_array();
	for (size_t i = 0; i < docs.n; i++)
		json_array_append(*out, seq ? json_object_get(docs.v[i].obj, "k") : docs.v[i].obj);
	obj_docs_free(&docs);
	return 0;
}

/* ---- loading a kustomization ------------------------------------------ */

/* The directories being built, outermost first (cycle detection). */
struct stack {
	char *real[64];
	size_t n;
};

static int build_dir(const char *dir, struct stack *st, bool component, struct kresmap *m,
    char **err);

static int
load_kustomization(const char *dir, struct kust *k, char **err)
{
	char *path = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(kust_names) && !path; i++) {
		char *p = xasprintf("%s/%s", dir, kust_names[i]);
		struct stat st;
		if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
			path = p;
		else
			free(p);
	}
	if (!path) {
		*err = xasprintf("unable to find one of 'kustomization.yaml', 'kustomization.yml' "
		    "or 'Kustomization' in directory '%s'", dir);
		return -ENOENT;
	}
	k->dir = dir;
	k->file = path;
	k->k = NULL;
	char *text;
	size_t len;
	int rc = kz_read("", path, &text, &len, err);
	if (rc < 0)
		return rc;
	json_t *docs;
	rc = kz_parse(text, len, path, true, &docs, err);
	free(text);
	if (rc < 0)
		return rc;
	k->k = json_incref(json_array_size(docs) ? json_array_get(docs, 0) : json_object());
	json_decref(docs);
	if (!json_is_object(k->k)) {
		*err = xasprintf("%s: invalid Kustomization: not a mapping", path);
		return -EINVAL;
	}
	return canonical_fields(k->k, path, err);
}

static bool
is_remote(const char *s)
{
	static const char *const schemes[] = { "http://", "https://", "git@", "ssh://",
	    "git::", "github.com/", "gitlab.com/", "bitbucket.org/" };
	for (size_t i = 0; i < ARRAY_SIZE(schemes); i++)
		if (str_has_prefix(s, schemes[i]))
			return true;
	return false;
}

/* Same kind, name and namespace (apiVersion's group too). */
static bool
same_id(const json_t *a, const json_t *b)
{
	const char *ga = obj_api_version(a), *gb = obj_api_version(b);
	const char *sa = strchr(ga, '/'), *sb = strchr(gb, '/');
	size_t la = sa ? (size_t)(sa - ga) : 0, lb = sb ? (size_t)(sb - gb) : 0;
	return la == lb && !strncmp(ga, gb, la) && !strcmp(obj_kind(a), obj_kind(b)) &&
	    !strcmp(obj_name(a), obj_name(b)) && !strcmp(obj_namespace(a), obj_namespace(b));
}

/* Appends src's resources to m; an id already there is kustomize's
 * "already registered id" error. src is emptied. */
static int
absorb(struct kresmap *m, struct kresmap *src, const char *what, char **err)
{
	for (size_t i = 0; i < src->n; i++)
		for (size_t j = 0; j < m->n; j++)
			if (same_id(src->v[i].obj, m->v[j].obj)) {
				*err = xasprintf("%s: may not add resource with an already registered "
				    "id: %s.%s/%s.%s", what, obj_kind(src->v[i].obj),
				    obj_api_version(src->v[i].obj), obj_name(src->v[i].obj),
				    *obj_namespace(src->v[i].obj) ? obj_namespace(src->v[i].obj)
				    : "[noNs]");
				return -EEXIST;
			}
	m->v = xrealloc(m->v, (m->n + src->n + 1) * sizeof *m->v);
	memcpy(&m->v[m->n], src->v, src->n * sizeof *src->v);
	m->n += src->n;
	free(src->v);
	src->v = NULL;
	src->n = 0;
	return 0;
}

static int
load_file(const char *dir, const char *rel, struct kresmap *m, char **err)
{
	char *text;
	size_t len;
	int rc = kz_read(dir, rel, &text, &len, err);
	if (rc < 0)
		return rc;
	char *file = xasprintf("%s/%s", dir, rel);
	json_t *docs;
	rc = kz_parse(text, len, file, false, &docs, err);
	free(text);
	if (rc < 0) {
		free(file);
		return rc;
	}
	struct kresmap add = { 0 };
	size_t i;
	json_t *d;
	json_array_foreach(docs, i, d) {
		if (!json_is_object(d) || !*obj_kind(d) || !*obj_name(d)) {
			*err = xasprintf("%s: document %zu: missing kind or metadata.name", file, i);
			rc = -EINVAL;
			break;
		}
		kz_add(&add, json_deep_copy(d));
	}
	json_decref(docs);
	if (rc == 0)
		rc = absorb(m, &add, file, err);
	kz_map_free(&add);
	free(file);
	return rc;
}

/* One entry of resources: (or bases:, components:). */
static int
load_entry(const struct kust *k, const char *rel, struct stack *st, bool component,
    struct kresmap *m, char **err)
{
	if (is_remote(rel)) {
		*err = xasprintf("%s: accumulating resources from '%s': remote resources are not "
		    "supported by v6's built-in kustomize (vendor them into the repository)",
		    k->file, rel);
		return -ENOTSUP;
	}
	if (rel[0] == '/') {
		*err = xasprintf("%s: accumulating resources from '%s': new root '%s' cannot be "
		    "absolute", k->file, rel, rel);
		return -EINVAL;
	}
	char *path = xasprintf("%s/%s", k->dir, rel);
	struct stat sb;
	int rc;
	if (stat(path, &sb) < 0) {
		rc = -errno;
		*err = xasprintf("%s: accumulating resources from '%s': %s: %s", k->file, rel,
		    path, strerror(errno));
	} else if (S_ISDIR(sb.st_mode)) {
		struct kresmap sub = { 0 };
		rc = build_dir(path, st, component, &sub, err);
		if (rc == 0)
			rc = absorb(m, &sub, k->file, err);
		kz_map_free(&sub);
	} else if (component) {
		rc = -EINVAL;
		*err = xasprintf("%s: component '%s' must be a directory", k->file, rel);
	} else {
		rc = load_file(k->dir, rel, m, err);
	}
	free(path);
	return rc;
}

static int
load_list(const struct kust *k, const char *field, struct stack *st, bool component,
    struct kresmap *m, char **err)
{
	json_t *list, *e;
	size_t i;
	int rc = kz_list(k, field, &list, err);
	if (rc < 0)
		return rc;
	json_array_foreach(list, i, e) {
		if (!json_is_string(e)) {
			*err = xasprintf("%s: %s[%zu] must be a path", k->file, field, i);
			return -EINVAL;
		}
		rc = load_entry(k, json_string_value(e), st, component, m, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Components transform what was accumulated before them: m itself. */
static int
apply_components(const struct kust *k, struct stack *st, struct kresmap *m, char **err)
{
	json_t *list = json_object_get(k->k, "components");
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e) {
		if (!json_is_string(e))
			continue;
		char *path = xasprintf("%s/%s", k->dir, json_string_value(e));
		int rc = build_dir(path, st, true, m, err);
		free(path);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Builds dir into m. A component (kind: Component) works on m's current
 * contents; a kustomization starts from nothing. */
static int
build_dir(const char *dir, struct stack *st, bool component, struct kresmap *m, char **err)
{
	char real[PATH_MAX];
	if (!realpath(dir, real)) {
		*err = xasprintf("%s: %s", dir, strerror(errno));
		return -errno;
	}
	for (size_t i = 0; i < st->n; i++)
		if (!strcmp(st->real[i], real)) {
			*err = xasprintf("%s: cycle detected: candidate root '%s' contains visited "
			    "root '%s'", dir, real, st->real[i]);
			return -ELOOP;
		}
	if (st->n == ARRAY_SIZE(st->real)) {
		*err = xasprintf("%s: kustomizations nested too deeply", dir);
		return -ELOOP;
	}
	struct kust k = { 0 };
	int rc = load_kustomization(dir, &k, err);
	if (rc < 0)
		goto out;
	const char *kind = obj_str(k.k, "kind");
	if (component != !strcmp(kind, "Component")) {
		*err = component ? xasprintf("%s: expected kind 'Component' for a component",
		    k.file) : xasprintf("%s: kind Component may only be used in components:",
		    k.file);
		rc = -EINVAL;
		goto out;
	}
	st->real[st->n++] = real;
	rc = load_list(&k, "resources", st, false, m, err);
	if (rc == 0)
		rc = load_list(&k, "bases", st, false, m, err);
	if (rc == 0)
		rc = apply_components(&k, st, m, err);
	if (rc == 0)
		rc = kz_generate(&k, m, err);
	if (rc == 0)
		rc = kz_transform(&k, m, err);
	st->n--;
out:
	json_decref(k.k);
	free((char *)k.file);
	return rc;
}

/* ---- output order ------------------------------------------------------ */

static const char *const order_first[] = {
	"Namespace", "ResourceQuota", "StorageClass", "CustomResourceDefinition",
	"ServiceAccount", "PodSecurityPolicy", "Role", "ClusterRole", "RoleBinding",
	"ClusterRoleBinding", "ConfigMap", "Secret", "Endpoints", "Service", "LimitRange",
	"PriorityClass", "PersistentVolume", "PersistentVolumeClaim", "Deployment",
	"StatefulSet", "CronJob", "PodDisruptionBudget",
};
static const char *const order_last[] = {
	"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
};

static int
kind_rank(const char *kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(order_first); i++)
		if (!strcmp(kind, order_first[i]))
			return (int)i - (int)ARRAY_SIZE(order_first);
	for (size_t i = 0; i < ARRAY_SIZE(order_last); i++)
		if (!strcmp(kind, order_last[i]))
			return (int)i + 1;
	return 0;
}

/* group, version of an apiVersion into g/v (>= 256 bytes each). */
static void
split_api_version(const char *av, char *g, char *v)
{
	const char *s = strchr(av, '/');
	snprintf(g, 256, "%.*s", s ? (int)(s - av) : 0, av);
	snprintf(v, 256, "%s", s ? s + 1 : av);
}

/* kustomize's legacyGVKSortString "G_V_K" and ResId string
 * "K_V_G|ns|name", with ~G/~V/~K/~X/~N for empty parts. */
static char *
gvk_sort_string(const json_t *o)
{
	char g[256], v[256];
	split_api_version(obj_api_version(o), g, v);
	return xasprintf("%s_%s_%s", g[0] ? g : "~G", v[0] ? v : "~V",
	    *obj_kind(o) ? obj_kind(o) : "~K");
}

static char *
id_sort_string(const json_t *o)
{
	char g[256], v[256];
	split_api_version(obj_api_version(o), g, v);
	return xasprintf("%s_%s_%s|%s|%s", *obj_kind(o) ? obj_kind(o) : "~K", v[0] ? v : "~V",
	    g[0] ? g : "~G", *obj_namespace(o) ? obj_namespace(o) : "~X",
	    *obj_name(o) ? obj_name(o) : "~N");
}

static int
legacy_cmp(const void *pa, const void *pb)
{
	const json_t *a = *(json_t *const *)pa, *b = *(json_t *const *)pb;
	int ra = kind_rank(obj_kind(a)), rb = kind_rank(obj_kind(b));
	if (ra != rb)
		return ra < rb ? -1 : 1;
	char *ga = gvk_sort_string(a), *gb = gvk_sort_string(b);
	int c = strcmp(ga, gb);
	char g[256], v[256];
	split_api_version(obj_api_version(a), g, v);
	bool a_core = !g[0];
	split_api_version(obj_api_version(b), g, v);
	if (c && !strcmp(obj_kind(a), "Namespace") && !strcmp(obj_kind(b), "Namespace") &&
	    (a_core || !g[0]))
		c = -c;
	free(ga);
	free(gb);
	if (c == 0) {
		char *ia = id_sort_string(a), *ib = id_sort_string(b);
		c = strcmp(ia, ib);
		free(ia);
		free(ib);
	}
	return c;
}

int
kustomize_build(const char *dir, json_t **out, char **err)
{
	struct stack st = { .n = 0 };
	struct kresmap m = { 0 };
	*out = NULL;
	*err = NULL;
	int rc = build_dir(dir, &st, false, &m, err);
	if (rc == 0) {
		kz_add_hashes(&m);
		rc = kz_fix_names(&m, err);
	}
	if (rc < 0) {
		kz_map_free(&m);
		return rc;
	}
	json_t **objs = xcalloc(m.n + 1, sizeof *objs);
	for (size_t i = 0; i < m.n; i++)
		objs[i] = m.v[i].obj;
	qsort(objs, m.n, sizeof *objs, legacy_cmp);
	*out = json_array();
	for (size_t i = 0; i < m.n; i++)
		json_array_append(*out, objs[i]);
	free(objs);
	kz_map_free(&m);
	return 0;
}
