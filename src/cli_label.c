/* cli_label.c — `v6 label` and `v6 annotate`, as kubectl's: KEY=VALUE sets,
 * KEY- removes, --overwrite is needed to change a value, targets by
 * KIND/NAME, KIND NAME..., KIND with -l / --all, or the objects that -f
 * files name (read as apply reads them, cli_manifest.c). Each object is read,
 * the change checked here and sent as a JSON merge patch of its
 * metadata.labels / annotations (the server validates keys and values);
 * --resource-version makes the patch conditional. Called by cli.c. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What each verb says (kubectl's words differ between the two). */
struct meta_verb {
	const char *field;	/* metadata.FIELD */
	const char *noun;	/* "label" */
	const char *done;	/* "labeled" */
	const char *undone;	/* "unlabeled", or NULL: always `done` */
	const char *unchanged;	/* "not labeled", or NULL: always `done` */
};

static const struct meta_verb label_verb = { "labels", "label", "labeled", "unlabeled",
	"not labeled" };
static const struct meta_verb annotate_verb = { "annotations", "annotation", "annotated",
	NULL, NULL };

/* kubectl's GetResourcesAndPairs: KEY=VALUE or KEY- is a change. */
static bool
is_pair(const char *s)
{
	size_t n = strlen(s);
	return (strchr(s, '=') && s[0] != '=') || (n > 1 && s[n - 1] == '-');
}

int
cli_meta_edit_parse(bool labels, const char **args, size_t nargs, size_t *nres,
    struct cli_meta_edit *e, char **err)
{
	const char *noun = labels ? "label" : "annotation";
	size_t i = 0;
	*err = NULL;
	e->set = json_object();
	e->remove = json_array();
	while (i < nargs && !is_pair(args[i]))
		i++;
	*nres = i;
	for (; i < nargs; i++) {
		const char *a = args[i], *eq = strchr(a, '=');
		if (!is_pair(a)) {
			*err = xasprintf("all resources must be specified before %s changes: %s",
			    noun, a);
			goto fail;
		}
		if (eq) {
			/* a label value holds no '=', an annotation's may */
			if (labels && strchr(eq + 1, '=')) {
				*err = xasprintf("invalid label spec: %s", a);
				goto fail;
			}
			char *key = xstrndup(a, (size_t)(eq - a));
			json_object_set_new(e->set, key, json_string(eq + 1));
			free(key);
		} else {
			json_array_append_new(e->remove, json_stringn(a, strlen(a) - 1));
		}
	}
	size_t j;
	json_t *k;
	struct buf both = BUF_INIT;
	json_array_foreach(e->remove, j, k)
		if (json_object_get(e->set, json_string_value(k)))
			buf_printf(&both, "%s%s", both.len ? ", " : "", json_string_value(k));
	if (both.len) {
		*err = labels ? xstrdup("can not both modify and remove a label in the same "
		    "command") : xasprintf("can not both modify and remove the following "
		    "annotation(s) in the same command: %s", both.data);
		buf_free(&both);
		goto fail;
	}
	if (json_object_size(e->set) == 0 && json_array_size(e->remove) == 0) {
		*err = xasprintf("at least one %s update is required", noun);
		goto fail;
	}
	return 0;
fail:
	cli_meta_edit_free(e);
	return -EINVAL;
}

void
cli_meta_edit_free(struct cli_meta_edit *e)
{
	json_decref(e->set);
	json_decref(e->remove);
	e->set = e->remove = NULL;
}

int
cli_meta_edit_patch(const struct cli_meta_edit *e, bool labels, const json_t *obj,
    bool overwrite, json_t **patch, char **err)
{
	const json_t *cur = obj_get_path(obj, labels ? "metadata.labels" : "metadata.annotations");
	json_t *m = json_object();
	struct buf taken = BUF_INIT;
	bool added = false;
	const char *key;
	json_t *v;
	size_t i;
	*patch = NULL;
	*err = NULL;
	json_object_foreach(e->set, key, v) {
		const char *have = json_string_value(json_object_get(cur, key));
		if (have && strcmp(have, json_string_value(v)) == 0)
			continue;
		/* kubectl lets a change-cause be rewritten without --overwrite */
		if (have && !overwrite && (labels || strcmp(key, "kubernetes.io/change-cause")))
			buf_printf(&taken, labels ? "%s'%s' already has a value (%s), and "
			    "--overwrite is false" : "%s'%s' already has a value (%s)",
			    taken.len ? (labels ? "\n" : "; ") : "", key, have);
		json_object_set(m, key, v);
		added = true;
	}
	if (taken.len) {
		*err = labels ? xstrdup(taken.data) : xasprintf("--overwrite is false but found "
		    "the following declared annotation(s): %s", taken.data);
		buf_free(&taken);
		json_decref(m);
		return -EINVAL;
	}
	json_array_foreach(e->remove, i, v)
		if (json_object_get(cur, json_string_value(v)))
			json_object_set_new(m, json_string_value(v), json_null());
	int rc = json_object_size(m) == 0 ? 0 : added ? 1 : 2;
	*patch = json_pack("{s:{s:o}}", "metadata", labels ? "labels" : "annotations", m);
	return rc;
}

/* ---- the verbs ------------------------------------------------------- */

struct target {
	const struct kind *k;
	char *ns;
	char *name;
};

struct run {
	struct cli_opts *o;
	const struct meta_verb *mv;
	struct cli_meta_edit e;
	enum cli_dry dry;
	struct target *t;
	size_t n;
};

static void
target_add(struct run *r, const struct kind *k, const char *ns, const char *name)
{
	r->t = xrealloc(r->t, (r->n + 1) * sizeof *r->t);
	r->t[r->n++] = (struct target){ k, xstrdup(k->namespaced ? ns : ""), xstrdup(name) };
}

static int
from_selector(struct run *r, const struct kind *k)
{
	struct buf q = BUF_INIT;
	json_t *list;
	if (r->o->selector)
		cli_query_add(&q, "labelSelector", r->o->selector);
	char *path = cli_path(k, r->o->all_ns ? NULL : cli_ns(r->o), NULL, q.data);
	buf_free(&q);
	int rc = cli_get_json(path, &list);
	free(path);
	if (rc < 0)
		return rc;
	size_t i;
	json_t *it;
	json_array_foreach(json_object_get(list, "items"), i, it)
		target_add(r, k, obj_namespace(it), obj_name(it));
	json_decref(list);
	return 0;
}

/* -f FILE...: the objects the files name (their namespace, else -n, else
 * "default"); the live ones are read by edit_one, so one that does not
 * exist is the server's NotFound, as with kubectl's. */
static int
from_files(struct run *r, size_t nres)
{
	struct cli_items items;
	if (nres > 0)
		return cli_fail("when paths, URLs, or stdin is provided as input, you may not "
		    "specify resource arguments as well");
	if (r->o->selector || r->o->all)
		return cli_fail("-l and --all select among a kind's objects, not those of -f "
		    "files");
	if (cli_items_load(r->o, false, &items) < 0)
		return -EINVAL;
	for (size_t i = 0; i < items.n; i++)
		target_add(r, items.v[i].k, obj_namespace(items.v[i].obj),
		    obj_name(items.v[i].obj));
	cli_items_free(&items);
	return 0;
}

/* The objects named by the nres resource arguments: KIND/NAME..., KIND
 * NAME..., or KIND with -l / --all; or by the -f files. */
static int
targets(struct run *r, size_t nres)
{
	const char **a = (const char **)r->o->args;
	const char *ns = cli_ns(r->o);
	if (r->o->nfiles)
		return from_files(r, nres);
	if (nres == 0)
		return cli_fail("one or more resources must be specified as <resource> <name> or "
		    "<resource>/<name>");
	if (strchr(a[0], '/')) {
		for (size_t i = 0; i < nres; i++) {
			const char *s = strchr(a[i], '/');
			if (s == NULL)
				return cli_fail("there is no need to specify a resource type as a "
				    "separate argument when passing arguments in resource/name form");
			char *kind = xstrndup(a[i], (size_t)(s - a[i]));
			const struct kind *k = cli_kind(kind);
			free(kind);
			if (k == NULL)
				return -EINVAL;
			target_add(r, k, ns, s + 1);
		}
		return 0;
	}
	const struct kind *k = cli_kind(a[0]);
	if (k == NULL)
		return -EINVAL;
	if (nres == 1 && !r->o->selector && !r->o->all)
		return cli_fail("resource(s) were provided, but no name was specified");
	if (nres > 1 && (r->o->selector || r->o->all))
		return cli_fail("name cannot be provided when a selector or --all is specified");
	if (nres == 1)
		return from_selector(r, k);
	for (size_t i = 1; i < nres; i++)
		target_add(r, k, ns, a[i]);
	return 0;
}

static void
print_result(const struct run *r, const struct target *t, const json_t *obj, int change)
{
	char ref[256];
	const char *out = r->o->output;
	if (out && strcmp(out, "json") == 0) {
		char *s = cli_json_dump(obj);
		fputs(s, stdout);
		free(s);
		return;
	}
	if (out && strcmp(out, "yaml") == 0) {
		char *s = cli_yaml_dump(obj);
		fputs(s, stdout);
		free(s);
		return;
	}
	cli_obj_ref(t->k, t->name, ref, sizeof ref);
	if (out) {	/* name */
		printf("%s\n", ref);
		return;
	}
	const char *said = r->mv->done;
	if (change == 0 && r->mv->unchanged)
		said = r->mv->unchanged;
	else if (change == 2 && r->mv->undone && !r->o->overwrite)
		said = r->mv->undone;
	printf("%s %s%s\n", ref, said, cli_dry_said[r->dry]);
}

static int
edit_one(struct run *r, const struct target *t)
{
	bool labels = r->mv == &label_verb;
	char *path = cli_path(t->k, t->ns, t->name, NULL);
	json_t *obj = NULL, *patch = NULL, *after = NULL;
	struct cli_resp resp = { 0 };
	char *err = NULL;
	int rc = 1;
	if (cli_get_json(path, &obj) < 0)
		goto out;
	int change = cli_meta_edit_patch(&r->e, labels, obj, r->o->overwrite, &patch, &err);
	if (change < 0) {
		cli_err("%s", err);
		goto out;
	}
	if (labels) {
		size_t i;
		json_t *key;
		json_array_foreach(r->e.remove, i, key)
			if (!json_object_get(obj_labels(obj), json_string_value(key)))
				printf("label \"%s\" not found.\n", json_string_value(key));
	}
	if (r->o->resource_version)
		json_object_set_new(json_object_get(patch, "metadata"), "resourceVersion",
		    json_string(r->o->resource_version));
	if (r->dry == CLI_DRY_CLIENT) {
		after = patch_merge(obj, patch, &err);
	} else {
		char *p = r->dry == CLI_DRY_SERVER ? xasprintf("%s?dryRun=All", path)
		    : xstrdup(path);
		int hr = cli_http("PATCH", p, "application/merge-patch+json", patch, &resp);
		free(p);
		if (hr < 0)
			goto out;
		if (resp.status != 200) {
			cli_print_error(&resp, NULL);
			goto out;
		}
		after = json_incref(resp.body);
	}
	if (after == NULL) {
		cli_err("%s", err ? err : "the patch did not apply");
		goto out;
	}
	print_result(r, t, after, change);
	rc = 0;
out:
	free(err);
	free(path);
	json_decref(obj);
	json_decref(patch);
	json_decref(after);
	cli_resp_free(&resp);
	return rc;
}

static int
meta_run(struct cli_opts *o, const struct meta_verb *mv)
{
	struct run r = { .o = o, .mv = mv };
	size_t nres;
	char *err;
	int rc = 1;
	if (o->output && strcmp(o->output, "json") && strcmp(o->output, "yaml") &&
	    strcmp(o->output, "name"))
		return cli_err("unable to match a printer suitable for the output format \"%s\", "
		    "allowed formats are: json, name, yaml", o->output);
	if (cli_dry_run(o, &r.dry) < 0)
		return 1;
	if (cli_meta_edit_parse(mv == &label_verb, o->args, o->nargs, &nres, &r.e, &err) < 0) {
		rc = cli_err("%s", err);
		free(err);
		return rc;
	}
	if (targets(&r, nres) < 0)
		goto out;
	if (o->resource_version && r.n != 1) {
		cli_err("--resource-version may only be used with a single resource");
		goto out;
	}
	rc = 0;
	for (size_t i = 0; i < r.n; i++)
		rc |= edit_one(&r, &r.t[i]);
out:
	for (size_t i = 0; i < r.n; i++) {
		free(r.t[i].ns);
		free(r.t[i].name);
	}
	free(r.t);
	cli_meta_edit_free(&r.e);
	return rc;
}

int
cli_label(struct cli_opts *o)
{
	return meta_run(o, &label_verb);
}

int
cli_annotate(struct cli_opts *o)
{
	return meta_run(o, &annotate_verb);
}
