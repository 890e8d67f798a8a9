/* cli_promote_git.c — `v6 promote` for a target that an Application syncs
 * (docs/environments.md): instead of writing the target, which selfHeal
 * would revert, the difference between the target's pod template and the
 * source's (images, env, args, resources, probes, ...) and the data of the
 * ConfigMaps it uses go into the Application's git source as one commit on
 * its branch, edited in place (cli_yedit.c) so comments and layout stay;
 * the Application is told to refresh (its webhook), so git stays the truth. */
#include "cli.h"
#include "gitops.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

/* One file of the checkout, read whole, and whether we changed it. */
struct pfile {
	char *rel;		/* path in the repository */
	char *text;
	size_t len;
	bool changed;
};

struct pgit {
	const struct kind *k;
	const char *name, *ns;	/* the target object */
	const char *from, *to;	/* as the user named them */
	const json_t *target;	/* live, in the target environment */
	json_t *tpl;		/* the template to promote, references mapped */
	const char *spath;	/* the Application's source path */
	char *tree;		/* the checkout */
	struct pfile *files;
	size_t nfiles;
	json_t *ops;		/* template changes: [{op, path, value}] */
	json_t *cms;		/* ConfigMap changes: [{name, base, ops}] */
	struct buf log;		/* one line per change for the message */
};

/* The image name as written, without tag or digest ("reg:5000/a/b"). */
static char *
image_name(const char *ref)
{
	size_t n = strcspn(ref, "@");
	const char *slash = memrchr(ref, '/', n), *colon = memrchr(ref, ':', n);
	if (colon && (!slash || colon > slash))
		n = (size_t)(colon - ref);
	return xstrndup(ref, n);
}

static const char *
image_digest(const char *ref)
{
	const char *at = strchr(ref, '@');
	return at ? at + 1 : "";
}

/* The tag, "" when none. Caller frees. */
static char *
image_tag(const char *ref)
{
	char *name = image_name(ref);
	size_t n = strlen(name), end = strcspn(ref, "@");
	char *tag = ref[n] == ':' ? xstrndup(ref + n + 1, end - n - 1) : xstrdup("");
	free(name);
	return tag;
}

static struct pfile *
file_of(struct pgit *g, const char *rel)
{
	for (size_t i = 0; i < g->nfiles; i++)
		if (!strcmp(g->files[i].rel, rel))
			return &g->files[i];
	return NULL;
}

/* The file rel of the checkout, added empty when new. */
static struct pfile *
file_add(struct pgit *g, const char *rel)
{
	struct pfile *f = file_of(g, rel);
	if (f)
		return f;
	g->files = xrealloc(g->files, (g->nfiles + 1) * sizeof *g->files);
	g->files[g->nfiles] = (struct pfile){ .rel = xstrdup(rel), .text = xstrdup("") };
	return &g->files[g->nfiles++];
}

/* Reads dir (relative rel) into g->files: YAML and JSON files, recursively,
 * dot-directories skipped. */
static void
read_tree(struct pgit *g, const char *dir, const char *rel)
{
	struct dirent **names = NULL;
	int n = scandir(dir, &names, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		const char *nm = names[i]->d_name;
		char *p = xasprintf("%s/%s", dir, nm);
		char *r = *rel ? xasprintf("%s/%s", rel, nm) : xstrdup(nm);
		struct stat st;
		const char *dot = strrchr(nm, '.');
		if (nm[0] == '.' || stat(p, &st) < 0) {
			/* hidden or gone */
		} else if (S_ISDIR(st.st_mode)) {
			read_tree(g, p, r);
		} else if (!strcmp(nm, "Kustomization") || (dot && (!strcmp(dot, ".yaml") ||
		    !strcmp(dot, ".yml") || !strcmp(dot, ".json")))) {
			struct pfile f = { .rel = r };
			if (file_read_all(p, &f.text, &f.len) == 0) {
				g->files = xrealloc(g->files, (g->nfiles + 1) * sizeof *g->files);
				g->files[g->nfiles++] = f;
				r = NULL;
			}
		}
		free(r);
		free(p);
		free(names[i]);
	}
	free(names);
}

/* path (a JSON array) with more segments appended. New reference. */
static json_t *
path_join(const json_t *base, const json_t *more)
{
	json_t *p = json_deep_copy(base);
	json_array_extend(p, (json_t *)more);
	return p;
}

/* "spec.containers[web].env[GREETING]" for a log line. */
static void
path_text(struct buf *b, const json_t *path)
{
	size_t i;
	json_t *s;
	json_array_foreach(path, i, s) {
		if (json_is_string(s)) {
			buf_printf(b, "%s%s", i ? "." : "", json_string_value(s));
		} else if (json_is_integer(s)) {
			buf_printf(b, "[%lld]", (long long)json_integer_value(s));
		} else {
			json_t *v = json_object_iter_value(json_object_iter(s));
			char *t = json_dumps(v, JSON_ENCODE_ANY);
			buf_printf(b, "[%s]", json_is_string(v) ? json_string_value(v) : t);
			free(t);
		}
	}
}

/* ---- the references of a template: ConfigMaps and Secrets ---------------- */

/* Where a pod spec names a ConfigMap or a Secret: the list (under the pod
 * spec, or "c:" under each container), the path in an item, and the kind. */
static const struct tpl_ref {
	const char *list, *field, *kind;
} tpl_refs[] = {
	{ "c:envFrom", "configMapRef.name", "ConfigMap" },
	{ "c:envFrom", "secretRef.name", "Secret" },
	{ "c:env", "valueFrom.configMapKeyRef.name", "ConfigMap" },
	{ "c:env", "valueFrom.secretKeyRef.name", "Secret" },
	{ "volumes", "configMap.name", "ConfigMap" },
	{ "volumes", "secret.secretName", "Secret" },
	{ "imagePullSecrets", "name", "Secret" },
};

static void
refs_in(json_t *holder, const struct tpl_ref *r, cli_ref_fn cb, void *arg)
{
	size_t i;
	json_t *x;
	const char *dot = strrchr(r->field, '.');
	char *parent = dot ? xstrndup(r->field, (size_t)(dot - r->field)) : NULL;
	json_array_foreach(json_object_get(holder, r->list + (r->list[1] == ':' ? 2 : 0)), i,
	    x) {
		json_t *h = parent ? obj_get_path(x, parent) : x;
		if (json_is_string(json_object_get(h, dot ? dot + 1 : r->field)))
			cb(r->kind, h, dot ? dot + 1 : r->field, arg);
		/* projected volumes name them per source */
		size_t k;
		json_t *s;
		if (!strcmp(r->list, "volumes") && !strcmp(r->kind, "ConfigMap"))
			json_array_foreach(obj_get_path(x, "projected.sources"), k, s) {
				if (json_is_string(obj_get_path(s, "configMap.name")))
					cb("ConfigMap", json_object_get(s, "configMap"), "name", arg);
				if (json_is_string(obj_get_path(s, "secret.name")))
					cb("Secret", json_object_get(s, "secret"), "name", arg);
			}
	}
	free(parent);
}

void
cli_tpl_refs(json_t *tpl, cli_ref_fn cb, void *arg)
{
	static const char *const lists[] = { "containers", "initContainers" };
	json_t *spec = json_object_get(tpl, "spec");
	for (size_t r = 0; r < ARRAY_SIZE(tpl_refs); r++) {
		if (tpl_refs[r].list[1] != ':') {
			refs_in(spec, &tpl_refs[r], cb, arg);
			continue;
		}
		for (size_t l = 0; l < ARRAY_SIZE(lists); l++) {
			size_t i;
			json_t *c;
			json_array_foreach(json_object_get(spec, lists[l]), i, c)
				refs_in(c, &tpl_refs[r], cb, arg);
		}
	}
}

/* The length of name without the content hash kustomize's generators
 * append ("-" and 10 of [2456789bcdfghkmt]), its whole length when none. */
static size_t
hash_base_len(const char *name)
{
	size_t n = strlen(name);
	if (n < 12 || name[n - 11] != '-' ||
	    strspn(name + n - 10, "2456789bcdfghkmt") != 10)
		return n;
	return n - 11;
}

static bool
same_base(const char *a, const char *b)
{
	size_t n = hash_base_len(a);
	return n == hash_base_len(b) && n < strlen(a) && n < strlen(b) && !strncmp(a, b, n);
}

/* ---- mapping the source's references onto the target's ---------------------- */

struct refmap {
	struct pgit *g;
	json_t *tgt_refs;	/* {kind: {name: true}} the target's template names */
	json_t *live;		/* {kind: [names in the target namespace]} */
	json_t *pairs;		/* ConfigMaps: [[source name, target name]] */
	char *err;
};

static void
collect_ref(const char *kind, json_t *holder, const char *field, void *arg)
{
	json_t *m = arg, *names = json_object_get(m, kind);
	if (!names) {
		names = json_object();
		json_object_set_new(m, kind, names);
	}
	json_object_set_new(names, json_string_value(json_object_get(holder, field)), json_true());
}

/* The target's object for the source's name: the same name, else one of
 * the same generator (hash suffix) that the target's template names, else
 * one in the target namespace. NULL when none. */
static const char *
map_name(struct refmap *rm, const char *kind, const char *name)
{
	json_t *refs = json_object_get(rm->tgt_refs, kind), *live = json_object_get(rm->live,
	    kind), *v;
	const char *n;
	size_t i;
	json_array_foreach(live, i, v)
		if (!strcmp(json_string_value(v), name))
			return json_string_value(v);
	json_object_foreach(refs, n, v)
		if (same_base(n, name))
			return n;
	json_array_foreach(live, i, v)
		if (same_base(json_string_value(v), name))
			return json_string_value(v);
	return NULL;
}

static void
map_ref(const char *kind, json_t *holder, const char *field, void *arg)
{
	struct refmap *rm = arg;
	const char *name = json_string_value(json_object_get(holder, field));
	if (rm->err)
		return;
	const char *to = map_name(rm, kind, name);
	if (!to && !strcmp(kind, "Secret")) {
		rm->err = xasprintf("the template of %s in %s uses Secret %s, which %s does not "
		    "have; v6 never writes a Secret's values into git: create it in namespace "
		    "%s (or commit it encrypted, as a SealedSecret) and promote again", rm->g->name,
		    rm->g->from, name, rm->g->to, rm->g->ns);
		return;
	}
	if (!to) {
		rm->err = xasprintf("the template of %s in %s uses ConfigMap %s, which %s does "
		    "not have: add it to the Application's source first", rm->g->name,
		    rm->g->from, name, rm->g->to);
		return;
	}
	if (!strcmp(kind, "ConfigMap"))
		json_array_append_new(rm->pairs, json_pack("[s,s]", name, to));
	json_object_set_new(holder, field, json_string(to));
}

/* Names of kind in namespace ns. New reference. */
static json_t *
live_names(const char *ns, const char *plural)
{
	json_t *out = json_array(), *list = NULL, *o;
	size_t i;
	char *path = xasprintf("/api/v1/namespaces/%s/%s", ns, plural);
	if (cli_get_json(path, &list) == 0)
		json_array_foreach(json_object_get(list, "items"), i, o)
			json_array_append_new(out, json_string(obj_name(o)));
	json_decref(list);
	free(path);
	return out;
}

static json_t *
get_configmap(const char *ns, const char *name)
{
	json_t *o = NULL;
	char *path = xasprintf("/api/v1/namespaces/%s/configmaps/%s", ns, name);
	if (cli_get_json(path, &o) < 0)
		o = NULL;
	free(path);
	return o;
}

/* ---- the difference: operations on paths ---------------------------------- */

static void
op_add(json_t *ops, const char *op, json_t *path, const json_t *value)
{
	json_t *o = json_pack("{s:s, s:O}", "op", op, "path", path);
	if (value)
		json_object_set(o, "value", (json_t *)value);
	json_array_append_new(ops, o);
}

/* The merge key of the list field items (under parent) when every item of
 * a and b is an object carrying it as a scalar, else NULL. */
static const char *
list_key(const char *field, const char *parent, const json_t *a, const json_t *b)
{
	const char *k = patch_strategic_list_key(field, parent, a, b);
	const json_t *lists[] = { a, b };
	size_t i;
	json_t *x;
	if (!k)
		return NULL;
	for (size_t l = 0; l < 2; l++)
		json_array_foreach(lists[l], i, x) {
			json_t *v = json_object_get(x, k);
			if (!v || json_is_object(v) || json_is_array(v))
				return NULL;
		}
	return k;
}

static json_t *
item_by(const json_t *list, const char *key, const json_t *v)
{
	size_t i;
	json_t *x;
	json_array_foreach(list, i, x)
		if (json_equal(json_object_get(x, key), (json_t *)v))
			return x;
	return NULL;
}

/* Appends to ops what turns a into b at path (field: the last key, parent:
 * the one before): "set" a value, "del" a key or keyed item. Keyed lists
 * (containers and env by name, ...) are compared item by item; others are
 * set whole. */
static void
diff(json_t *ops, json_t *path, const char *field, const char *parent, const json_t *a,
    const json_t *b)
{
	const char *k;
	json_t *v;
	if (json_equal((json_t *)a, (json_t *)b))
		return;
	if (json_is_object(a) && json_is_object(b)) {
		json_object_foreach((json_t *)b, k, v) {
			json_t *p = json_deep_copy(path);
			json_array_append_new(p, json_string(k));
			if (json_object_get(a, k))
				diff(ops, p, k, field, json_object_get(a, k), v);
			else
				op_add(ops, "set", p, v);
			json_decref(p);
		}
		json_object_foreach((json_t *)a, k, v)
			if (!json_object_get(b, k)) {
				json_t *p = json_deep_copy(path);
				json_array_append_new(p, json_string(k));
				op_add(ops, "del", p, NULL);
				json_decref(p);
			}
		return;
	}
	const char *key = json_is_array(a) && json_is_array(b) ? list_key(field, parent, a, b)
	    : NULL;
	if (!key) {
		op_add(ops, "set", path, b);
		return;
	}
	size_t i;
	json_array_foreach((json_t *)b, i, v) {
		json_t *id = json_object_get(v, key), *p = json_deep_copy(path);
		json_array_append_new(p, json_pack("{s:O}", key, id));
		const json_t *old = item_by(a, key, id);
		if (old)
			diff(ops, p, field, parent, old, v);
		else
			op_add(ops, "set", p, v);
		json_decref(p);
	}
	json_array_foreach((json_t *)a, i, v)
		if (!item_by(b, key, json_object_get(v, key))) {
			json_t *p = json_deep_copy(path);
			json_array_append_new(p, json_pack("{s:O}", key, json_object_get(v, key)));
			op_add(ops, "del", p, NULL);
			json_decref(p);
		}
}

/* Whether op sets the image of a container ([containers, {name}, image]). */
static bool
is_image_op(const json_t *op)
{
	const json_t *p = json_object_get(op, "path");
	size_t n = json_array_size(p);
	const char *list = json_string_value(json_array_get(p, n - 3));
	return n == 4 && !strcmp(json_string_value(json_array_get(p, n - 1)), "image") &&
	    list && (!strcmp(list, "containers") || !strcmp(list, "initContainers")) &&
	    !strcmp(obj_str(op, "op"), "set");
}

/* Applies ops to document doc of f under prefix. As a strategic-merge
 * patch (patch: a deleted key becomes null, a deleted item {k: v, $patch:
 * delete}) or as the manifest itself (deleted for real). */
static int
apply_ops(struct pfile *f, size_t doc, const json_t *prefix, const json_t *ops, bool patch,
    bool skip_images)
{
	size_t i;
	json_t *op;
	int rc = 0;
	json_array_foreach(ops, i, op) {
		if (skip_images && is_image_op(op))
			continue;
		json_t *path = path_join(prefix, json_object_get(op, "path"));
		json_t *last = json_array_get(path, json_array_size(path) - 1);
		if (!strcmp(obj_str(op, "op"), "set")) {
			rc = yedit_set(&f->text, doc, path, json_object_get(op, "value"));
		} else if (!patch) {
			rc = yedit_delete(&f->text, doc, path);
		} else if (json_is_object(last)) {
			json_t *del = json_deep_copy(last);
			json_object_set_new(del, "$patch", json_string("delete"));
			rc = yedit_set(&f->text, doc, path, del);
			json_decref(del);
		} else {
			rc = yedit_set(&f->text, doc, path, json_null());
		}
		json_decref(path);
		if (rc < 0)
			return rc;
		f->changed = true;
	}
	f->len = strlen(f->text);
	return 0;
}

/* The image the target runs in the container an image op sets. */
static const char *
target_image(const struct pgit *g, const json_t *op)
{
	const json_t *p = json_object_get(op, "path");
	json_t *c;
	size_t j;
	json_array_foreach(obj_get_path(obj_get_path(g->target, "spec.template.spec"),
	    json_string_value(json_array_get(p, 1))), j, c)
		if (!strcmp(obj_str(c, "name"), obj_str(json_array_get(p, 2), "name")))
			return obj_str(c, "image");
	return "";
}

/* The log lines of ops (what of obj changed). */
static void
log_ops(struct pgit *g, const char *obj, const json_t *ops)
{
	size_t i;
	json_t *op;
	json_array_foreach(ops, i, op) {
		if (is_image_op(op)) {
			buf_printf(&g->log, "%s: %s -> %s\n", obj_str(json_array_get(json_object_get(op,
			    "path"), 2), "name"), target_image(g, op), obj_str(op, "value"));
			continue;
		}
		buf_printf(&g->log, "%s: ", obj);
		path_text(&g->log, json_object_get(op, "path"));
		buf_puts(&g->log, !strcmp(obj_str(op, "op"), "del") ? " removed\n" : " set\n");
	}
}

/* ---- a document of a file by kind and name ----------------------------------- */

/* The document of f holding kind/name (namespace ns or none), or -ENOENT. */
static int
doc_of(const struct pfile *f, const char *kind, const char *name, const char *ns)
{
	struct obj_docs docs = { 0 };
	struct errlist errs = { 0 };
	int at = -ENOENT;
	if (obj_parse(f->text, f->len, &docs, &errs) == 0)
		for (size_t d = 0; d < docs.n && at < 0; d++) {
			const json_t *o = docs.v[d].obj;
			const char *ons = obj_namespace(o);
			if (!strcmp(obj_str(o, "kind"), kind) && !strcmp(obj_name(o), name) &&
			    (!*ons || !ns || !strcmp(ons, ns)))
				at = (int)d;
		}
	obj_docs_free(&docs);
	errlist_free(&errs);
	return at;
}

/* The file under the source path holding kind/name, with its document. */
static struct pfile *
find_doc(struct pgit *g, const char *kind, const char *name, int *doc)
{
	size_t n = strlen(g->spath);
	for (size_t i = 0; i < g->nfiles; i++) {
		struct pfile *f = &g->files[i];
		if (n && (strncmp(f->rel, g->spath, n) || f->rel[n] != '/'))
			continue;
		if ((*doc = doc_of(f, kind, name, g->ns)) >= 0)
			return f;
	}
	return NULL;
}

/* ---- a kustomization --------------------------------------------------------- */

static const char *const kfiles[] = { "kustomization.yaml", "kustomization.yml",
	"Kustomization" };

struct kedit {
	struct pgit *g;
	struct pfile *f;	/* the kustomization (file_add moves it) */
	const char *rel;	/* ... its path */
	json_t *k;		/* ... as JSON, read again after each edit */
	char *dir;		/* its directory in the repository ("" at the top) */
	struct pfile *patch;	/* the promotion's patch file, once made */
	size_t patch_docs;
};

static void
kedit_reload(struct kedit *ke)
{
	json_decref(ke->k);
	ke->f->len = strlen(ke->f->text);
	ke->k = yedit_json(ke->f->text, 0);
	if (!json_is_object(ke->k)) {
		json_decref(ke->k);
		ke->k = json_object();
	}
}

/* Sets the images: entry for old -> new_ref as `kustomize edit set image`
 * does: the entry that made the old name (newName), else the one for it,
 * else a new one; newTag, or digest when pinned. */
static int
kust_image(struct kedit *ke, const char *old, const char *new_ref)
{
	char *oname = image_name(old), *nname = image_name(new_ref), *tag = image_tag(new_ref);
	json_t *imgs = json_object_get(ke->k, "images"), *e;
	size_t k, at = (size_t)-1;
	int rc = 0;
	json_array_foreach(imgs, k, e)
		if (at == (size_t)-1 && !strcmp(obj_str(e, "newName"), oname))
			at = k;
	json_array_foreach(imgs, k, e)
		if (at == (size_t)-1 && !strcmp(obj_str(e, "name"), oname))
			at = k;
	json_t *want = json_pack("{s:s}", "name", at == (size_t)-1 ? oname :
	    obj_str(json_array_get(imgs, at), "name"));
	if (strcmp(obj_str(want, "name"), nname))
		json_object_set_new(want, "newName", json_string(nname));
	if (*image_digest(new_ref))
		json_object_set_new(want, "digest", json_string(image_digest(new_ref)));
	else
		json_object_set_new(want, "newTag", json_string(*tag ? tag : "latest"));
	if (at == (size_t)-1) {
		json_t *path = json_pack("[s]", "images");
		rc = yedit_append(&ke->f->text, 0, path, want);
		json_decref(path);
	} else {
		static const char *const fields[] = { "newName", "newTag", "digest" };
		for (size_t i = 0; i < ARRAY_SIZE(fields) && rc == 0; i++) {
			json_t *path = json_pack("[s,I,s]", "images", (json_int_t)at, fields[i]);
			json_t *v = json_object_get(want, fields[i]);
			if (!v)
				rc = yedit_delete(&ke->f->text, 0, path);
			else if (!json_equal(v, json_object_get(json_array_get(imgs, at), fields[i])))
				rc = yedit_set(&ke->f->text, 0, path, v);
			json_decref(path);
		}
	}
	json_decref(want);
	free(oname);
	free(nname);
	free(tag);
	ke->f->changed = true;
	kedit_reload(ke);
	return rc;
}

/* The promotion's patch file in the overlay (made and listed under
 * patches: on first use) and the document of kind/name in it (appended
 * when missing). */
static int
patch_doc(struct kedit *ke, const char *api, const char *kind, const char *name,
    struct pfile **out)
{
	struct pgit *g = ke->g;
	char *base = xasprintf("promoted-%s-%s.yaml", g->k->plural, g->name);
	char *rel = *ke->dir ? xasprintf("%s/%s", ke->dir, base) : xstrdup(base);
	struct pfile *f = file_of(g, rel);
	int rc = 0;
	if (!f) {
		f = file_add(g, rel);
		ke->f = file_of(g, ke->rel);
		free(f->text);
		f->text = xasprintf("# Written by `v6 promote %s/%s`: what %s's pod template and "
		    "config\n# differ by from the base here. Edited in place by each promotion.\n",
		    g->k->plural, g->name, g->ns);
		f->changed = true;
	}
	json_t *patches = json_object_get(ke->k, "patches"), *p;
	size_t i;
	bool listed = false;
	json_array_foreach(patches, i, p)
		listed = listed || !strcmp(obj_str(p, "path"), base);
	if (!listed) {
		json_t *path = json_pack("[s]", "patches"), *item = json_pack("{s:s}", "path", base);
		rc = yedit_append(&ke->f->text, 0, path, item);
		json_decref(path);
		json_decref(item);
		ke->f->changed = true;
		kedit_reload(ke);
	}
	int d = doc_of(f, kind, name, NULL);
	if (d < 0 && rc == 0) {
		json_t *skel = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", api, "kind", kind,
		    "metadata", "name", name);
		char *y = cli_yaml_dump(skel);
		struct obj_docs docs = { 0 };
		struct errlist errs = { 0 };
		bool empty = obj_parse(f->text, strlen(f->text), &docs, &errs) < 0 || docs.n == 0;
		d = empty ? 0 : (int)docs.n;
		obj_docs_free(&docs);
		errlist_free(&errs);
		char *t = xasprintf("%s%s%s", f->text, empty ? "" : "---\n", y);
		free(f->text);
		f->text = t;
		f->len = strlen(t);
		f->changed = true;
		free(y);
		json_decref(skel);
	}
	free(base);
	free(rel);
	*out = f;
	return rc < 0 ? rc : d;
}

/* The name a resource had before this kustomization's namePrefix /
 * nameSuffix. Caller frees. */
static char *
kust_input_name(const json_t *k, const char *name)
{
	const char *pre = obj_str(k, "namePrefix"), *suf = obj_str(k, "nameSuffix");
	size_t n = strlen(name), p = strlen(pre), s = strlen(suf);
	if (n > p + s && !strncmp(name, pre, p) && !strcmp(name + n - s, suf))
		return xstrndup(name + p, n - p - s);
	return xstrdup(name);
}

/* A files: entry of a generator ("KEY=PATH" or "PATH"): its key, and its
 * path in the repository when it lies in the overlay's directory (NULL
 * otherwise: a base's file is the source environment's too). Caller frees
 * both. */
static char *
gen_file(const struct kedit *ke, const char *entry, char **key)
{
	const char *eq = strchr(entry, '='), *path = eq ? eq + 1 : entry;
	const char *slash = strrchr(path, '/');
	*key = eq ? xstrndup(entry, (size_t)(eq - entry)) : xstrdup(slash ? slash + 1 : path);
	if (path[0] == '/' || !strncmp(path, "../", 3) || strstr(path, "/../"))
		return NULL;
	return *ke->dir ? xasprintf("%s/%s", ke->dir, path) : xstrdup(path);
}

/* Rewrites the generator's files (from the end: a key the data lost drops
 * its entry) and records their keys in seen. */
static int
gen_files(struct kedit *ke, size_t at, const json_t *files, const json_t *data, json_t *seen)
{
	int rc = 0;
	for (size_t j = json_array_size(files); j-- > 0 && rc == 0;) {
		char *key, *rel = gen_file(ke, json_string_value(json_array_get(files, j)) ?: "",
		    &key);
		json_t *want = json_object_get(data, key);
		if (!json_is_string(want)) {
			json_t *path = json_pack("[s,I,s,I]", "configMapGenerator", (json_int_t)at,
			    "files", (json_int_t)j);
			rc = yedit_delete(&ke->f->text, 0, path);
			json_decref(path);
		} else {
			char *full = xasprintf("%s/%s", ke->g->tree, rel), *old = NULL;
			size_t len = 0;
			if (file_read_all(full, &old, &len) < 0 || len != strlen(json_string_value(want))
			    || memcmp(old, json_string_value(want), len)) {
				struct pfile *f = file_add(ke->g, rel);
				ke->f = file_of(ke->g, ke->rel);
				free(f->text);
				f->text = xstrdup(json_string_value(want));
				f->changed = true;
			}
			free(old);
			free(full);
		}
		json_object_set_new(seen, key, json_true());
		free(key);
		free(rel);
	}
	return rc;
}

/* A configMapGenerator entry of the overlay made of literals and files in
 * the overlay's directory: its literal lines and its files are edited to the
 * new data (exact: the generator makes all of the ConfigMap), new keys
 * become literals. -ENOENT when there is none such. */
static int
kust_generator(struct kedit *ke, const char *base, const json_t *data)
{
	json_t *gens = json_object_get(ke->k, "configMapGenerator"), *e, *gen = NULL;
	size_t i, at = 0;
	json_array_foreach(gens, i, e)
		if (!gen && !strcmp(obj_str(e, "name"), base)) {
			gen = e;
			at = i;
		}
	if (!gen || !json_is_object(data) || json_object_get(gen, "envs") ||
	    (*obj_str(gen, "behavior") && strcmp(obj_str(gen, "behavior"), "create")))
		return -ENOENT;
	json_t *files = json_object_get(gen, "files"), *f;
	json_array_foreach(files, i, f) {
		char *key, *rel = gen_file(ke, json_string_value(f) ?: "", &key);
		bool inside = rel != NULL;
		free(key);
		free(rel);
		if (!inside)
			return -ENOENT;
	}
	json_t *lits = json_object_get(gen, "literals"), *l;
	json_t *seen = json_object();
	int rc = gen_files(ke, at, files, data, seen);
	/* from the end, so deletions keep the indices before them */
	for (size_t j = json_array_size(lits); j-- > 0 && rc == 0;) {
		l = json_array_get(lits, j);
		const char *s = json_string_value(l) ? json_string_value(l) : "";
		char *key = xstrndup(s, strcspn(s, "="));
		json_t *want = json_object_get(data, key);
		json_t *path = json_pack("[s,I,s,I]", "configMapGenerator", (json_int_t)at,
		    "literals", (json_int_t)j);
		if (!json_is_string(want) || json_object_get(seen, key)) {
			rc = yedit_delete(&ke->f->text, 0, path);
		} else if (strcmp(s + strlen(key) + (s[strlen(key)] == '='),
		    json_string_value(want))) {
			json_t *v = json_sprintf("%s=%s", key, json_string_value(want));
			rc = yedit_set(&ke->f->text, 0, path, v);
			json_decref(v);
		}
		json_object_set_new(seen, key, json_true());
		json_decref(path);
		free(key);
	}
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)data, k, v)
		if (rc == 0 && !json_object_get(seen, k)) {
			json_t *path = json_pack("[s,I,s]", "configMapGenerator", (json_int_t)at,
			    "literals");
			json_t *item = json_sprintf("%s=%s", k, json_string_value(v));
			rc = yedit_append(&ke->f->text, 0, path, item);
			json_decref(item);
			json_decref(path);
		}
	json_decref(seen);
	ke->f->changed = true;
	kedit_reload(ke);
	return rc;
}

static int
edit_kustomization(struct pgit *g, const char *rel)
{
	struct kedit ke = { .g = g, .f = file_of(g, rel), .rel = rel };
	int rc = 0;
	size_t i;
	json_t *op;
	ke.dir = xstrndup(rel, strrchr(rel, '/') ? (size_t)(strrchr(rel, '/') - rel) : 0);
	kedit_reload(&ke);
	/* images through images:, which would override a patch's */
	json_array_foreach(g->ops, i, op)
		if (rc == 0 && is_image_op(op)) {
			rc = kust_image(&ke, target_image(g, op), obj_str(op, "value"));
		}
	/* the rest of the template as a strategic-merge patch in the overlay */
	size_t rest = 0;
	json_array_foreach(g->ops, i, op)
		rest += !is_image_op(op);
	if (rc == 0 && rest) {
		struct pfile *pf;
		char *in = kust_input_name(ke.k, g->name);
		int d = patch_doc(&ke, obj_str(g->target, "apiVersion"), g->k->kind, in, &pf);
		free(in);
		json_t *prefix = json_pack("[s,s]", "spec", "template");
		rc = d < 0 ? d : apply_ops(pf, (size_t)d, prefix, g->ops, true, true);
		json_decref(prefix);
	}
	/* ConfigMaps: the overlay's own generator, else a patch */
	json_t *cm;
	json_array_foreach(g->cms, i, cm) {
		if (rc < 0)
			break;
		const char *base = obj_str(cm, "base");
		rc = kust_generator(&ke, base, json_object_get(cm, "data"));
		if (rc != -ENOENT)
			continue;
		struct pfile *pf;
		char *in = kust_input_name(ke.k, base);
		int d = patch_doc(&ke, "v1", "ConfigMap", in, &pf);
		free(in);
		json_t *prefix = json_array();
		rc = d < 0 ? d : apply_ops(pf, (size_t)d, prefix, json_object_get(cm, "ops"), true,
		    false);
		json_decref(prefix);
	}
	json_decref(ke.k);
	free(ke.dir);
	return rc;
}

/* ---- plain manifests: the documents edited in place ------------------------ */

static int
edit_manifests(struct pgit *g)
{
	int doc;
	struct pfile *f = find_doc(g, g->k->kind, g->name, &doc);
	if (!f)
		return -ENOENT;
	json_t *prefix = json_pack("[s,s]", "spec", "template");
	int rc = apply_ops(f, (size_t)doc, prefix, g->ops, false, false);
	json_decref(prefix);
	size_t i;
	json_t *cm;
	json_array_foreach(g->cms, i, cm) {
		if (rc < 0)
			break;
		f = find_doc(g, "ConfigMap", obj_str(cm, "name"), &doc);
		if (!f) {
			cli_err("cannot promote through git: no manifest of ConfigMap %s under %s",
			    obj_str(cm, "name"), *g->spath ? g->spath : "the repository's top");
			return -EEXIST;
		}
		prefix = json_array();
		rc = apply_ops(f, (size_t)doc, prefix, json_object_get(cm, "ops"), false, false);
		json_decref(prefix);
	}
	return rc;
}

/* ---- what changes ---------------------------------------------------------------- */

/* Maps the source's ConfigMap and Secret references onto the target's,
 * fills g->ops and g->cms. 0, or -1 with the error printed. */
static int
compute_changes(struct pgit *g, const char *src_ns)
{
	struct refmap rm = { .g = g, .tgt_refs = json_object(), .live = json_object(),
		.pairs = json_array() };
	json_t *ttpl = json_deep_copy(obj_get_path(g->target, "spec.template"));
	cli_tpl_refs(ttpl, collect_ref, rm.tgt_refs);
	json_object_set_new(rm.live, "ConfigMap", live_names(g->ns, "configmaps"));
	json_object_set_new(rm.live, "Secret", live_names(g->ns, "secrets"));
	cli_tpl_refs(g->tpl, map_ref, &rm);
	int rc = 0;
	if (rm.err) {
		cli_err("cannot promote through git: %s", rm.err);
		rc = -1;
		goto out;
	}
	/* the pod's labels are the environment's (its selector): not promoted */
	json_t *tl = obj_get_path(ttpl, "metadata.labels");
	if (tl)
		json_object_set(obj_child(g->tpl, "metadata"), "labels", tl);
	else
		json_object_del(json_object_get(g->tpl, "metadata"), "labels");
	json_t *root = json_array();
	diff(g->ops, root, "", "", ttpl, g->tpl);
	json_decref(root);
	char what[512];
	log_ops(g, cli_obj_ref(g->k, g->name, what, sizeof what), g->ops);
	size_t i;
	json_t *pr;
	json_array_foreach(rm.pairs, i, pr) {
		const char *sname = json_string_value(json_array_get(pr, 0));
		const char *tname = json_string_value(json_array_get(pr, 1));
		json_t *s = get_configmap(src_ns, sname), *t = get_configmap(g->ns, tname);
		json_t *ops = json_array(), *sd = json_object(), *td = json_object();
		static const char *const fields[] = { "data", "binaryData" };
		for (size_t f = 0; f < ARRAY_SIZE(fields); f++) {
			json_t *a = json_object_get(t, fields[f]), *b = json_object_get(s, fields[f]);
			json_object_set_new(td, fields[f], a ? json_incref(a) : json_object());
			json_object_set_new(sd, fields[f], b ? json_incref(b) : json_object());
		}
		root = json_array();
		if (s && t)
			diff(ops, root, "", "", td, sd);
		json_decref(root);
		bool dup = false;
		json_t *c;
		size_t j;
		json_array_foreach(g->cms, j, c)
			dup = dup || !strcmp(obj_str(c, "name"), tname);
		if (json_array_size(ops) && !dup) {
			char *base = xstrndup(tname, hash_base_len(tname));
			json_t *data = json_object_get(sd, "data");
			json_array_append_new(g->cms, json_pack("{s:s, s:s, s:O, s:O}", "name", tname,
			    "base", base, "ops", ops, "data", json_object_size(json_object_get(sd,
			    "binaryData")) ? json_null() : data));
			char *who = xasprintf("configmap/%s", base);
			log_ops(g, who, ops);
			free(who);
			free(base);
		}
		json_decref(ops);
		json_decref(sd);
		json_decref(td);
		json_decref(s);
		json_decref(t);
	}
out:
	free(rm.err);
	json_decref(rm.pairs);
	json_decref(rm.live);
	json_decref(rm.tgt_refs);
	json_decref(ttpl);
	return rc;
}

/* ---- the whole path ------------------------------------------------------ */

/* The Application that tracks target (its tracking id), or NULL. */
static json_t *
tracking_app(const json_t *target)
{
	const char *tid = obj_annotation(target, APP_TRACKING_ID);
	if (!tid || !strchr(tid, ':'))
		return NULL;
	char *name = xstrndup(tid, strcspn(tid, ":"));
	json_t *list = NULL, *app = NULL, *a;
	size_t i;
	if (cli_get_json("/apis/argoproj.io/v1alpha1/applications", &list) == 0)
		json_array_foreach(json_object_get(list, "items"), i, a)
			if (!app && !strcmp(obj_name(a), name))
				app = json_incref(a);
	json_decref(list);
	free(name);
	return app;
}

/* Waits until app has synced revision sha (deadline: time_mono_ms; 0 for
 * ever). 0 when it has. */
static int
wait_synced(const json_t *app, const char *sha, int64_t deadline)
{
	char *path = xasprintf("/apis/argoproj.io/v1alpha1/namespaces/%s/applications/%s",
	    obj_namespace(app), obj_name(app));
	int rc = 1;
	for (int n = 0; n < 100000 && (!deadline || time_mono_ms() < deadline); n++) {
		json_t *a = NULL;
		if (cli_get_json(path, &a) < 0)
			break;
		bool done = !strcmp(obj_str_at(a, "status.sync.revision"), sha) &&
		    !strcmp(obj_str_at(a, "status.sync.status"), "Synced");
		json_decref(a);
		if (done) {
			rc = 0;
			break;
		}
		usleep(200 * 1000);
	}
	free(path);
	return rc;
}

int
cli_promote_git(const struct kind *k, const json_t *target, const json_t *tpl,
    const char *src_ns, const char *from, const char *to, int64_t wait_deadline, bool wait)
{
	json_t *app = target ? tracking_app(target) : NULL;
	if (!app)
		return 1;
	const json_t *src = obj_get_path(app, "spec.source");
	const char *url = obj_str(src, "repoURL"), *rev = obj_str(src, "targetRevision");
	char ref[256];
	cli_obj_ref(k, obj_name(target), ref, sizeof ref);
	int rc = -1;
	struct pgit g = { .k = k, .name = obj_name(target), .ns = obj_namespace(target),
		.from = from, .to = to, .target = target, .tpl = json_deep_copy(tpl),
		.spath = obj_str(src, "path"), .ops = json_array(), .cms = json_array(),
		.log = BUF_INIT };
	struct git_creds creds = { 0 };
	char tmp[] = "/tmp/v6-promote-XXXXXX", sha[41], newsha[41];
	char *err = NULL;
	bool have_tmp = false;
	if (!*rev || !strcmp(rev, "HEAD") || (strlen(rev) == 40 && strspn(rev,
	    "0123456789abcdef") == 40)) {
		cli_err("cannot promote %s through git: Application %s tracks %s, not a branch; "
		    "set spec.source.targetRevision to the branch to commit to", ref,
		    obj_name(app), *rev ? rev : "HEAD");
		goto out;
	}
	printf("%s is synced by Application %s/%s: promoting through git (%s, branch %s)\n",
	    ref, obj_namespace(app), obj_name(app), url, rev);
	if (compute_changes(&g, src_ns) < 0)
		goto out;
	if (json_array_size(g.ops) == 0 && json_array_size(g.cms) == 0) {
		printf("%s in %s already runs the template and config of %s: nothing to commit\n",
		    ref, to, from);
		rc = 0;
		goto out;
	}
	char *spath = xasprintf("/api/v1/namespaces/%s/secrets", obj_namespace(app));
	json_t *secrets = NULL;
	if (cli_get_json(spath, &secrets) == 0)
		git_creds_find(json_object_get(secrets, "items"), url, &creds);
	json_decref(secrets);
	free(spath);
	char *cmpath = xasprintf("/api/v1/namespaces/%s/configmaps/" APP_KNOWN_HOSTS_CM,
	    obj_namespace(app));
	json_t *khcm = NULL;
	struct cli_resp kr = { 0 };
	if (cli_http("GET", cmpath, NULL, NULL, &kr) == 0 && kr.status == 200)
		khcm = json_incref(obj_get_path(json_object_get(kr.body, "data"),
		    APP_KNOWN_HOSTS_KEY));
	cli_resp_free(&kr);
	free(cmpath);
	if (json_is_string(khcm))
		git_known_hosts_add(&creds, json_string_value(khcm));
	json_decref(khcm);
	git_known_hosts_user(&creds);
	if (!mkdtemp(tmp)) {
		cli_err("cannot make a temporary directory: %s", strerror(errno));
		goto out;
	}
	have_tmp = true;
	if (git_checkout(tmp, url, rev, &creds, sha, &g.tree, &err) < 0) {
		cli_err("cannot promote through git: %s", err);
		goto out;
	}
	read_tree(&g, g.tree, "");
	int n = -ENOENT;
	const char *kf = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(kfiles) && !kf; i++) {
		char *rel = *g.spath ? xasprintf("%s/%s", g.spath, kfiles[i]) : xstrdup(kfiles[i]);
		if (file_of(&g, rel))
			kf = kfiles[i], n = edit_kustomization(&g, rel);
		free(rel);
	}
	if (!kf)
		n = edit_manifests(&g);
	if (n == -EEXIST)
		goto out;
	if (n == -ENOENT) {
		cli_err("cannot promote through git: no manifest of %s in %s at %s/%s", ref, url,
		    rev, g.spath);
		goto out;
	}
	if (n < 0) {
		cli_err("cannot promote through git: cannot edit the manifests (%s)", strerror(-n));
		goto out;
	}
	struct git_file *files = xcalloc(g.nfiles, sizeof *files);
	size_t nf = 0;
	for (size_t i = 0; i < g.nfiles; i++)
		if (g.files[i].changed)
			files[nf++] = (struct git_file){ g.files[i].rel, g.files[i].text,
				strlen(g.files[i].text) };
	char *msg = xasprintf("promote %s from %s to %s\n\n%s", ref, from, to, g.log.data);
	int prc = git_commit_push(tmp, url, rev, &creds, sha, files, nf, msg, newsha, &err);
	free(msg);
	free(files);
	if (prc < 0) {
		cli_err("cannot promote through git: %s%s", err, prc == -EAGAIN ?
		    " (the branch moved meanwhile: run the promotion again)" : "");
		goto out;
	}
	fputs(g.log.data, stdout);
	printf("pushed %.12s to %s (branch %s); Application %s syncs it\n", newsha, url, rev,
	    obj_name(app));
	/* an instant sync, as a push webhook would trigger */
	struct cli_resp r = { 0 };
	json_t *hook = json_pack("{s:s}", "repoURL", url);
	cli_http("POST", "/api/webhook", NULL, hook, &r);
	json_decref(hook);
	cli_resp_free(&r);
	rc = 0;
	if (wait) {
		rc = wait_synced(app, newsha, wait_deadline);
		if (rc)
			cli_err("timed out waiting for Application %s to sync %.12s", obj_name(app),
			    newsha);
		else
			rc = cli_rollout_wait(k, obj_namespace(target), obj_name(target),
			    wait_deadline) != 0 ? -1 : 0;
	}
out:
	for (size_t i = 0; i < g.nfiles; i++) {
		free(g.files[i].rel);
		free(g.files[i].text);
	}
	free(g.files);
	free(g.tree);
	json_decref(g.tpl);
	json_decref(g.ops);
	json_decref(g.cms);
	buf_free(&g.log);
	free(err);
	git_creds_free(&creds);
	if (have_tmp)
		util_remove_tree(tmp);
	json_decref(app);
	return rc < 0 ? -1 : rc;
}
