/* cli_manifest.c — the CLI's -f inputs: files, directories and stdin read,
 * parsed into objects with positions, validated locally (every error
 * printed as FILE:LINE:COL: FIELD: MESSAGE) and given their namespace.
 * Used by apply, create and delete; also resolves user-typed kinds. */
#include "cli.h"
#include "kustomize.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *
cli_ns(const struct cli_opts *o)
{
	return o->ns && o->ns[0] ? o->ns : "default";
}

const struct kind *
cli_kind(const char *name)
{
	const struct kind *k = kind_find_user(name);
	if (k == NULL)
		fprintf(stderr, "error: the server doesn't have a resource type \"%s\"\n", name);
	return k;
}

struct paths {
	char **v;
	size_t n;
};

static void
paths_add(struct paths *p, char *s)
{
	p->v = xrealloc(p->v, (p->n + 1) * sizeof *p->v);
	p->v[p->n++] = s;
}

static bool
is_manifest_name(const char *n)
{
	return n[0] != '.' && (str_has_suffix(n, ".yaml") || str_has_suffix(n, ".yml") ||
	    str_has_suffix(n, ".json"));
}

/* Adds the manifests of dir in sorted order (recursing when asked). */
static int
expand_dir(const char *dir, bool recursive, struct paths *out)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return -errno;
	struct paths names = { 0 };
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			paths_add(&names, xasprintf("%s%s%s", dir,
			    str_has_suffix(dir, "/") ? "" : "/", e->d_name));
	closedir(d);
	qsort(names.v, names.n, sizeof *names.v, str_pcmp);
	for (size_t i = 0; i < names.n; i++) {
		struct stat st;
		const char *base = strrchr(names.v[i], '/') + 1;
		if (stat(names.v[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			if (recursive)
				expand_dir(names.v[i], true, out);
			free(names.v[i]);
		} else if (is_manifest_name(base)) {
			paths_add(out, names.v[i]);
		} else {
			free(names.v[i]);
		}
	}
	free(names.v);
	return 0;
}

static int
expand_paths(const struct cli_opts *o, struct paths *out)
{
	for (size_t i = 0; i < o->nfiles; i++) {
		struct stat st;
		const char *f = o->files[i];
		if (strcmp(f, "-") != 0 && stat(f, &st) < 0) {
			fprintf(stderr, "error: the path \"%s\" does not exist\n", f);
			return -ENOENT;
		}
		if (strcmp(f, "-") != 0 && S_ISDIR(st.st_mode)) {
			if (expand_dir(f, o->recursive, out) < 0) {
				fprintf(stderr, "error: cannot read directory \"%s\"\n", f);
				return -EIO;
			}
		} else {
			paths_add(out, xstrdup(f));
		}
	}
	return 0;
}

static void
print_errs(const struct errlist *errs, const char *file)
{
	for (size_t i = 0; i < errs->n; i++) {
		char *s = field_err_format(&errs->v[i], file);
		fprintf(stderr, "%s\n", s);
		free(s);
	}
}

static void
items_add(struct cli_items *items, const struct obj_doc *d, const struct kind *k,
    const char *file)
{
	items->v = xrealloc(items->v, (items->n + 1) * sizeof *items->v);
	items->v[items->n++] = (struct cli_item){ json_incref(d->obj), k, json_incref(d->pos),
	    xstrdup(file), d->line };
}

/* Namespace rules: the object's, else -n, else "default"; -n naming
 * another namespace than the object is kubectl's error. */
static int
set_namespace(const struct cli_opts *o, json_t *obj, const struct kind *k)
{
	if (!k->namespaced)
		return 0;
	const char *ns = obj_namespace(obj);
	if (ns[0] && o->ns && o->ns[0] && strcmp(ns, o->ns) != 0) {
		fprintf(stderr, "error: the namespace from the provided object \"%s\" does not "
		    "match the namespace \"%s\". You must pass '--namespace=%s' to perform "
		    "this operation.\n", ns, o->ns, ns);
		return -EINVAL;
	}
	if (!ns[0])
		json_object_set_new(obj_metadata(obj), "namespace", json_string(cli_ns(o)));
	return 0;
}

/* Checks one document; prints its errors. */
static int
check_doc(const struct cli_opts *o, const struct obj_doc *d, const char *file,
    bool validate, const struct kind **kp)
{
	struct errlist errs = { 0 };
	const struct kind *k = kind_find_gvk(obj_api_version(d->obj), obj_kind(d->obj));
	int rc = 0;
	if (validate)
		rc = obj_validate(d->obj, &errs);
	else if (k == NULL)
		errlist_add(&errs, "kind", "FieldValueNotSupported",
		    "unknown kind \"%s\" in apiVersion \"%s\"", obj_kind(d->obj),
		    obj_api_version(d->obj));
	if (k == NULL && errs.n == 0)
		errlist_add(&errs, "kind", "FieldValueNotSupported", "unknown kind \"%s\"",
		    obj_kind(d->obj));
	if (errs.n) {
		obj_pos_annotate(d->pos, &errs);
		print_errs(&errs, file);
		rc = -EINVAL;
	}
	errlist_free(&errs);
	if (rc == 0 && set_namespace(o, d->obj, k) < 0)
		rc = -EINVAL;
	*kp = k;
	return rc;
}

static int
load_file(const struct cli_opts *o, const char *path, bool validate, struct cli_items *out)
{
	char *text;
	size_t len;
	const char *name = strcmp(path, "-") == 0 ? "STDIN" : path;
	int rc = file_read_all(path, &text, &len);
	if (rc < 0) {
		fprintf(stderr, "error: cannot read %s: %s\n", name, strerror(-rc));
		return rc;
	}
	struct obj_docs docs = { 0 };
	struct errlist errs = { 0 };
	if (obj_parse(text, len, &docs, &errs) < 0 || errs.n) {
		print_errs(&errs, name);
		rc = -EINVAL;
	}
	for (size_t i = 0; i < docs.n; i++) {
		const struct kind *k;
		if (check_doc(o, &docs.v[i], name, validate, &k) < 0)
			rc = -EINVAL;
		else
			items_add(out, &docs.v[i], k, name);
	}
	errlist_free(&errs);
	obj_docs_free(&docs);
	free(text);
	return rc;
}

/* -k DIR: the objects kustomize renders, checked as a file's documents. */
static int
load_kustomization(const struct cli_opts *o, bool validate, struct cli_items *out)
{
	json_t *objs;
	char *err;
	if (kustomize_build(o->kustomize, &objs, &err) < 0) {
		fprintf(stderr, "error: %s\n", err);
		free(err);
		return -EINVAL;
	}
	char *file = xasprintf("%s (kustomize)", o->kustomize);
	int rc = 0;
	size_t i;
	json_t *obj;
	json_array_foreach(objs, i, obj) {
		struct obj_doc d = { obj, json_object(), 0 };
		const struct kind *k;
		if (check_doc(o, &d, file, validate, &k) < 0)
			rc = -EINVAL;
		else
			items_add(out, &d, k, file);
		json_decref(d.pos);
	}
	free(file);
	json_decref(objs);
	return rc;
}

int
cli_items_load(const struct cli_opts *o, bool validate, struct cli_items *out)
{
	struct paths paths = { 0 };
	int rc = expand_paths(o, &paths);
	memset(out, 0, sizeof *out);
	if (o->kustomize && load_kustomization(o, validate, out) < 0)
		rc = -EINVAL;
	/* every file is checked, so that every error is shown at once */
	for (size_t i = 0; i < paths.n; i++)
		if (load_file(o, paths.v[i], validate, out) < 0)
			rc = -EINVAL;
	for (size_t i = 0; i < paths.n; i++)
		free(paths.v[i]);
	free(paths.v);
	if (rc == 0 && out->n == 0) {
		fprintf(stderr, "error: no objects passed to %s\n", o->verb ? o->verb : "apply");
		rc = -EINVAL;
	}
	if (rc < 0)
		cli_items_free(out);
	return rc < 0 ? -EINVAL : 0;
}

void
cli_items_free(struct cli_items *items)
{
	for (size_t i = 0; i < items->n; i++) {
		json_decref(items->v[i].obj);
		json_decref(items->v[i].pos);
		free(items->v[i].file);
	}
	free(items->v);
	memset(items, 0, sizeof *items);
}
