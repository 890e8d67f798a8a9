/* ctrl_app_render.c — an Application's source as objects: a kustomization
 * through kustomize_build (kustomize.c), or the YAML / JSON files of a
 * directory as Argo CD's directory source reads them (recurse, include and
 * exclude globs). Every object is validated as the API would, so a broken
 * commit is reported with its file and field before anything is applied.
 * Pure file reading; runs on the thread pool with the fetch (ctrl_app.c). */
#include "gitops.h"
#include "kustomize.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const kustomization_files[] = { "kustomization.yaml",
	"kustomization.yml", "Kustomization" };

static bool
has_kustomization(const char *dir)
{
	struct stat st;
	for (size_t i = 0; i < ARRAY_SIZE(kustomization_files); i++) {
		char *p = xasprintf("%s/%s", dir, kustomization_files[i]);
		bool found = stat(p, &st) == 0;
		free(p);
		if (found)
			return true;
	}
	return false;
}

/* A glob of Argo CD's directory include / exclude: "*.yaml", or
 * "{a.yaml,b.yml}" alternatives; matched against the path relative to
 * the source path and against the base name. */
static bool
glob_match(const char *glob, const char *rel)
{
	if (!glob || !*glob)
		return false;
	const char *base = strrchr(rel, '/');
	base = base ? base + 1 : rel;
	size_t n = strlen(glob);
	if (glob[0] != '{' || glob[n - 1] != '}')
		return !fnmatch(glob, rel, FNM_PATHNAME) || !fnmatch(glob, base, 0);
	char *alts = xstrndup(glob + 1, n - 2), *save = NULL;
	bool m = false;
	for (char *t = strtok_r(alts, ",", &save); t && !m; t = strtok_r(NULL, ",", &save))
		m = !fnmatch(t, rel, FNM_PATHNAME) || !fnmatch(t, base, 0);
	free(alts);
	return m;
}

static bool
is_manifest(const char *name)
{
	size_t n = strlen(name);
	static const char *const exts[] = { ".yaml", ".yml", ".json" };
	for (size_t i = 0; i < ARRAY_SIZE(exts); i++) {
		size_t e = strlen(exts[i]);
		if (n > e && !strcmp(name + n - e, exts[i]))
			return true;
	}
	return false;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The manifest files under dir (relative to root), sorted, into files. */
static void
walk(const char *root, const char *rel, const json_t *dirsrc, json_t *files)
{
	char *dir = *rel ? xasprintf("%s/%s", root, rel) : xstrdup(root);
	DIR *d = opendir(dir);
	char **names = NULL;
	size_t n = 0;
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.') {
			names = xrealloc(names, (n + 1) * sizeof *names);
			names[n++] = xstrdup(e->d_name);
		}
	if (d)
		closedir(d);
	qsort(names, n, sizeof *names, cmp_str);
	bool recurse = json_is_true(json_object_get(dirsrc, "recurse"));
	const char *inc = json_string_value(json_object_get(dirsrc, "include"));
	const char *exc = json_string_value(json_object_get(dirsrc, "exclude"));
	for (size_t i = 0; i < n; i++) {
		char *r = *rel ? xasprintf("%s/%s", rel, names[i]) : xstrdup(names[i]);
		char *full = xasprintf("%s/%s", root, r);
		struct stat st;
		if (stat(full, &st) == 0 && S_ISDIR(st.st_mode)) {
			if (recurse)
				walk(root, r, dirsrc, files);
		} else if (is_manifest(names[i]) && (!inc || !*inc || glob_match(inc, r)) &&
		    !glob_match(exc, r)) {
			json_array_append_new(files, json_string(r));
		}
		free(full);
		free(r);
		free(names[i]);
	}
	free(names);
	free(dir);
}

static char *
errs_text(const struct errlist *errs, const char *file)
{
	char *out = NULL;
	for (size_t i = 0; i < errs->n; i++) {
		char *s = field_err_format(&errs->v[i], file);
		char *joined = out ? xasprintf("%s; %s", out, s) : xstrdup(s);
		free(out);
		free(s);
		out = joined;
	}
	return out;
}

/* Validates one document as the API would; NULL or the message. */
static char *
check_obj(const json_t *obj, const json_t *pos, const char *file)
{
	struct errlist errs = { 0 };
	if (obj_validate(obj, &errs) == 0 && errs.n == 0 &&
	    kind_find_gvk(obj_api_version(obj), obj_kind(obj)))
		return NULL;
	if (errs.n == 0)
		errlist_add(&errs, "kind", "FieldValueNotSupported", "unknown kind \"%s\"",
		    obj_kind(obj));
	if (pos)
		obj_pos_annotate(pos, &errs);
	char *s = errs_text(&errs, file);
	errlist_free(&errs);
	return s;
}

static int
read_files(const char *root, const char *prefix, const json_t *files, json_t *out,
    char **err)
{
	size_t i;
	const json_t *f;
	json_array_foreach(files, i, f) {
		const char *rel = json_string_value(f);
		char *path = xasprintf("%s/%s", root, rel), *text = NULL;
		char *shown = *prefix ? xasprintf("%s/%s", prefix, rel) : xstrdup(rel);
		size_t len;
		struct obj_docs docs = { 0 };
		struct errlist errs = { 0 };
		int rc = file_read_all(path, &text, &len);
		if (rc < 0)
			*err = xasprintf("%s: %s", shown, strerror(-rc));
		else if (obj_parse(text, len, &docs, &errs) < 0 || errs.n)
			*err = errs_text(&errs, shown);
		for (size_t d = 0; !*err && d < docs.n; d++) {
			*err = check_obj(docs.v[d].obj, docs.v[d].pos, shown);
			if (!*err)
				json_array_append(out, docs.v[d].obj);
		}
		errlist_free(&errs);
		obj_docs_free(&docs);
		free(text);
		free(path);
		free(shown);
		if (*err)
			return -EINVAL;
	}
	return 0;
}

/* msg with every "TREE/" taken out: paths relative to the repository, as
 * the user knows them, not the cache's. Caller frees. */
static char *
repo_relative(const char *msg, const char *tree)
{
	size_t tl = strlen(tree);
	char *out = xmalloc(strlen(msg) + 1), *o = out;
	while (*msg) {
		if (!strncmp(msg, tree, tl) && msg[tl] == '/')
			msg += tl + 1;
		else
			*o++ = *msg++;
	}
	*o = '\0';
	return out;
}

int
app_render(const char *tree, const json_t *src, json_t **out, char **err)
{
	const char *path = json_string_value(json_object_get(src, "path"));
	if (!path || !strcmp(path, "."))
		path = "";
	char *root = *path ? xasprintf("%s/%s", tree, path) : xstrdup(tree);
	struct stat st;
	int rc = 0;
	*out = NULL;
	*err = NULL;
	if (stat(root, &st) < 0 || !S_ISDIR(st.st_mode)) {
		*err = xasprintf("%s: app path does not exist", *path ? path : ".");
		free(root);
		return -ENOENT;
	}
	bool kz = json_object_get(src, "kustomize") || has_kustomization(root);
	if (kz) {
		char *kerr = NULL;
		rc = kustomize_build(root, out, &kerr);
		if (rc < 0) {
			char *rel = repo_relative(kerr ? kerr : strerror(-rc), tree);
			*err = xasprintf("%s: kustomize: %s", *path ? path : ".", rel);
			free(rel);
			free(kerr);
		}
		for (size_t i = 0; rc == 0 && i < json_array_size(*out); i++)
			if ((*err = check_obj(json_array_get(*out, i), NULL, *path ? path : ".")))
				rc = -EINVAL;
	} else {
		json_t *files = json_array();
		walk(root, "", json_object_get(src, "directory"), files);
		*out = json_array();
		rc = read_files(root, path, files, *out, err);
		json_decref(files);
	}
	if (rc < 0) {
		json_decref(*out);
		*out = NULL;
	}
	free(root);
	return rc < 0 ? rc : kz ? APP_KUSTOMIZE : APP_DIRECTORY;
}
