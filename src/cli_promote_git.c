/* cli_promote_git.c — `v6 promote` for a target that an Application syncs
 * (docs/environments.md): instead of writing the target, which selfHeal
 * would revert, the new images go into the Application's git source as a
 * commit on its branch (a kustomization's `images:` as `kustomize edit set
 * image` writes them, or the image lines of the manifest that holds the
 * object, edited in place so comments and layout stay), pushed, and the
 * Application is told to refresh (its webhook), so git stays the truth. */
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
	const json_t *target;	/* live, in the target environment */
	const json_t *tpl;	/* the template to promote */
	char *root;		/* checkout + source path */
	char *tree;		/* the checkout */
	struct pfile *files;
	size_t nfiles;
	struct buf log;		/* "container: old -> new" lines for the message */
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

static const json_t *
container_named(const json_t *tpl, const char *list, const char *name)
{
	size_t i;
	json_t *c;
	json_array_foreach(obj_get_path(tpl, list), i, c)
		if (!strcmp(obj_str(c, "name"), name))
			return c;
	return NULL;
}

static struct pfile *
file_of(struct pgit *g, const char *rel)
{
	for (size_t i = 0; i < g->nfiles; i++)
		if (!strcmp(g->files[i].rel, rel))
			return &g->files[i];
	return NULL;
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
		} else if (dot && (!strcmp(dot, ".yaml") || !strcmp(dot, ".yml") ||
		    !strcmp(dot, ".json"))) {
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

/* Replaces the scalar value of key at (line, col) in f (1-based; col at the
 * key) with value, keeping the rest of the line (quotes, a comment). */
static int
replace_scalar(struct pfile *f, int line, int col, const char *key, const char *value)
{
	char *p = f->text;
	for (int l = 1; l < line && p; l++)
		p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL;
	if (!p)
		return -ENOENT;
	char *eol = p + strcspn(p, "\n");
	char *k = p + (col > 0 ? col - 1 : 0);
	if (k > eol || strncmp(k, key, strlen(key)) != 0)
		k = strstr(p, key);
	if (!k || k > eol)
		return -ENOENT;
	char *v = k + strlen(key);
	while (v < eol && (*v == '"' || *v == '\'' ? 0 : *v == ':' || *v == ' '))
		v++;
	char *end;
	if (*v == '"' || *v == '\'') {
		end = memchr(v + 1, *v, (size_t)(eol - v - 1));
		if (!end)
			return -EINVAL;
		end++;
	} else {
		end = v;
		while (end < eol && *end != ',' && *end != '}' && *end != ']' &&
		    !(*end == ' ' && end[1] == '#') && *end != '\r')
			end++;
		while (end > v && end[-1] == ' ')
			end--;
	}
	char *q = cli_yaml_needs_quotes(value) ? xasprintf("\"%s\"", value) : xstrdup(value);
	struct buf b = BUF_INIT;
	buf_append(&b, f->text, (size_t)(v - f->text));
	buf_append(&b, q, strlen(q));
	buf_append(&b, end, f->len - (size_t)(end - f->text));
	free(q);
	free(f->text);
	f->len = b.len;
	f->text = buf_steal(&b);
	f->changed = true;
	return 0;
}

/* The images of tpl that differ from the target's, as (container list,
 * index, old, new) through cb. */
typedef int (*change_fn)(struct pgit *g, const char *list, size_t i, const char *old,
    const char *new_ref);

static int
each_change(struct pgit *g, change_fn cb)
{
	static const char *const lists[] = { "spec.containers", "spec.initContainers" };
	int n = 0;
	for (size_t l = 0; l < ARRAY_SIZE(lists); l++) {
		size_t i;
		json_t *c;
		json_array_foreach(obj_get_path(g->tpl, lists[l]), i, c) {
			char path[64];
			snprintf(path, sizeof path, "spec.template.%s", lists[l]);
			const json_t *old = container_named(obj_get_path(g->target, "spec.template"),
			    lists[l], obj_str(c, "name"));
			if (!old || !strcmp(obj_str(old, "image"), obj_str(c, "image")))
				continue;
			int rc = cb(g, path, i, obj_str(old, "image"), obj_str(c, "image"));
			if (rc < 0)
				return rc;
			buf_printf(&g->log, "%s: %s -> %s\n", obj_str(c, "name"),
			    obj_str(old, "image"), obj_str(c, "image"));
			n++;
		}
	}
	return n;
}

/* ---- a kustomization: its images list ----------------------------------- */

static const char *const kfiles[] = { "kustomization.yaml", "kustomization.yml",
	"Kustomization" };

static json_t *kust;		/* the kustomization being edited */

static int
kust_image(struct pgit *g, const char *list, size_t i, const char *old, const char *new_ref)
{
	(void)g; (void)list; (void)i;
	char *oname = image_name(old), *nname = image_name(new_ref), *tag = image_tag(new_ref);
	json_t *imgs = json_object_get(kust, "images"), *e, *hit = NULL;
	size_t k;
	if (!json_is_array(imgs)) {
		imgs = json_array();
		json_object_set_new(kust, "images", imgs);
	}
	/* the entry that made the old name (newName), else the one for it */
	json_array_foreach(imgs, k, e)
		if (!hit && !strcmp(obj_str(e, "newName"), oname))
			hit = e;
	json_array_foreach(imgs, k, e)
		if (!hit && !strcmp(obj_str(e, "name"), oname))
			hit = e;
	if (!hit) {
		hit = json_pack("{s:s}", "name", oname);
		json_array_append_new(imgs, hit);
	}
	if (strcmp(obj_str(hit, "name"), nname))
		json_object_set_new(hit, "newName", json_string(nname));
	else
		json_object_del(hit, "newName");
	if (*image_digest(new_ref)) {
		json_object_set_new(hit, "digest", json_string(image_digest(new_ref)));
		json_object_del(hit, "newTag");
	} else {
		json_object_set_new(hit, "newTag", json_string(*tag ? tag : "latest"));
		json_object_del(hit, "digest");
	}
	free(oname);
	free(nname);
	free(tag);
	return 0;
}

static int
edit_kustomization(struct pgit *g, const char *rel)
{
	struct pfile *f = file_of(g, rel);
	struct obj_docs docs = { 0 };
	struct errlist errs = { 0 };
	int rc = -EINVAL;
	if (!f || obj_parse(f->text, f->len, &docs, &errs) < 0 || docs.n != 1)
		goto out;
	kust = docs.v[0].obj;
	rc = each_change(g, kust_image);
	if (rc > 0) {
		free(f->text);
		f->text = cli_yaml_dump(kust);
		f->len = strlen(f->text);
		f->changed = true;
	}
out:
	kust = NULL;
	obj_docs_free(&docs);
	errlist_free(&errs);
	return rc;
}

/* ---- plain manifests: the image lines of the object's document ---------- */

static struct pfile *dir_file;
static const struct obj_doc *dir_doc;

static int
dir_image(struct pgit *g, const char *list, size_t i, const char *old, const char *new_ref)
{
	(void)g; (void)old;
	char field[96];
	int line = 0, col = 0;
	snprintf(field, sizeof field, "%s[%zu].image", list, i);
	obj_pos_lookup(dir_doc->pos, field, &line, &col);
	if (!json_is_string(json_object_get(json_array_get(obj_get_path(dir_doc->obj, list), i),
	    "image")))
		return -ENOENT;
	return replace_scalar(dir_file, line, col, "image", new_ref);
}

static int
edit_manifests(struct pgit *g)
{
	for (size_t i = 0; i < g->nfiles; i++) {
		struct pfile *f = &g->files[i];
		struct obj_docs docs = { 0 };
		struct errlist errs = { 0 };
		int rc = 0;
		bool found = false;
		if (obj_parse(f->text, f->len, &docs, &errs) == 0)
			for (size_t d = 0; d < docs.n && !found; d++) {
				const json_t *o = docs.v[d].obj;
				const char *ns = obj_namespace(o);
				if (strcmp(obj_str(o, "kind"), g->k->kind) ||
				    strcmp(obj_name(o), g->name) || (*ns && strcmp(ns, g->ns)))
					continue;
				found = true;
				/* a value changes within its line: other positions stay */
				dir_file = f;
				dir_doc = &docs.v[d];
				rc = each_change(g, dir_image);
			}
		obj_docs_free(&docs);
		errlist_free(&errs);
		if (found)
			return rc;
	}
	return -ENOENT;
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
    const char *from, const char *to, int64_t wait_deadline, bool wait)
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
		.target = target, .tpl = tpl, .log = BUF_INIT };
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
	char *spath = xasprintf("/api/v1/namespaces/%s/secrets", obj_namespace(app));
	json_t *secrets = NULL;
	if (cli_get_json(spath, &secrets) == 0)
		git_creds_find(json_object_get(secrets, "items"), url, &creds);
	json_decref(secrets);
	free(spath);
	if (!mkdtemp(tmp)) {
		cli_err("cannot make a temporary directory: %s", strerror(errno));
		goto out;
	}
	have_tmp = true;
	if (git_checkout(tmp, url, rev, &creds, sha, &g.tree, &err) < 0) {
		cli_err("cannot promote through git: %s", err);
		goto out;
	}
	const char *spath_rel = obj_str(src, "path");
	g.root = xasprintf("%s/%s", g.tree, spath_rel);
	read_tree(&g, g.tree, "");
	int n = -ENOENT;
	const char *kf = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(kfiles) && !kf; i++) {
		char *rel = *spath_rel ? xasprintf("%s/%s", spath_rel, kfiles[i]) : xstrdup(kfiles[i]);
		if (file_of(&g, rel))
			kf = kfiles[i], n = edit_kustomization(&g, rel);
		free(rel);
	}
	if (!kf)
		n = edit_manifests(&g);
	if (n == -ENOENT) {
		cli_err("cannot promote through git: no manifest of %s in %s at %s/%s", ref, url,
		    rev, spath_rel);
		goto out;
	}
	if (n < 0) {
		cli_err("cannot promote through git: cannot edit the manifests (%s)", strerror(-n));
		goto out;
	}
	if (n == 0) {
		printf("%s in %s already runs the images of %s: nothing to commit\n", ref, to,
		    from);
		rc = 0;
		goto out;
	}
	struct git_file *files = xcalloc(g.nfiles, sizeof *files);
	size_t nf = 0;
	for (size_t i = 0; i < g.nfiles; i++)
		if (g.files[i].changed)
			files[nf++] = (struct git_file){ g.files[i].rel, g.files[i].text,
				g.files[i].len };
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
	free(g.root);
	free(g.tree);
	buf_free(&g.log);
	free(err);
	git_creds_free(&creds);
	if (have_tmp)
		util_remove_tree(tmp);
	json_decref(app);
	return rc < 0 ? -1 : rc;
}
