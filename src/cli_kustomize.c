/* cli_kustomize.c — `v6 kustomize DIR` (render a kustomization as YAML,
 * as `kubectl kustomize` does), the -k input of apply / diff / delete
 * (cli_items_load calls cli_kustomize_items), and `v6 diff -f|-k`: a
 * unified diff of each live object against what apply would make of it
 * (the server's dry run), server-set fields left out and a Secret's values
 * masked; exit 0 when the same, 1 when different, >1 on error, as kubectl
 * diff. */
#include "cli.h"
#include "kustomize.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int
cli_kustomize(struct cli_opts *o)
{
	if (o->nargs > 1) {
		cli_err("specify one path to a kustomization directory");
		return 1;
	}
	const char *dir = o->nargs ? o->args[0] : ".";
	json_t *objs;
	char *err;
	if (kustomize_build(dir, &objs, &err) < 0) {
		cli_err("%s", err);
		free(err);
		return 1;
	}
	if (o->output && strcmp(o->output, "yaml")) {
		if (strcmp(o->output, "json")) {
			json_decref(objs);
			return cli_err("--output must be yaml or json");
		}
		json_t *list = json_pack("{s:s, s:s, s:o}", "apiVersion", "v1", "kind", "List",
		    "items", objs);
		char *s = cli_json_dump(list);
		fputs(s, stdout);
		free(s);
		json_decref(list);
		return 0;
	}
	size_t i;
	json_t *obj;
	json_array_foreach(objs, i, obj) {
		char *y = cli_yaml_dump(obj);
		printf("%s%s", i ? "---\n" : "", y);
		free(y);
	}
	json_decref(objs);
	return 0;
}

/* ---- diff -------------------------------------------------------------- */

static bool
is_secret(const json_t *o)
{
	return o && !strcmp(obj_kind(o), "Secret") && !strcmp(obj_api_version(o), "v1");
}

/* One field of before and after (either may be NULL), masked. */
static void
mask_field(json_t *before, json_t *after)
{
	const char *k;
	json_t *v, *tmp;
	json_object_foreach_safe(before, tmp, k, v) {
		json_t *w = json_object_get(after, k);
		bool changed = w && !json_equal(v, w);
		json_object_set_new(before, k, json_string(changed ? "*** (before)" : "***"));
		if (w)
			json_object_set_new(after, k, json_string(changed ? "*** (after)" : "***"));
	}
	json_object_foreach_safe(after, tmp, k, v)
		if (!json_object_get(before, k))
			json_object_set_new(after, k, json_string("***"));
}

void
cli_diff_mask_secret(json_t *before, json_t *after)
{
	if (!is_secret(before) && !is_secret(after))
		return;
	static const char *const fields[] = { "data", "stringData" };
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
		mask_field(json_object_get(before, fields[i]), json_object_get(after, fields[i]));
	/* the last-applied record holds the values too */
	json_t *ab = obj_get_path(before, "metadata.annotations");
	json_t *aa = obj_get_path(after, "metadata.annotations");
	json_t *lb = json_object_get(ab, CLI_LAST_APPLIED);
	json_t *la = json_object_get(aa, CLI_LAST_APPLIED);
	bool changed = lb && la && !json_equal(lb, la);
	if (lb)
		json_object_set_new(ab, CLI_LAST_APPLIED, json_string(changed ? "*** (before)" :
		    "***"));
	if (la)
		json_object_set_new(aa, CLI_LAST_APPLIED, json_string(changed ? "*** (after)" :
		    "***"));
}

static int
write_obj(const char *dir, const struct cli_item *it, const json_t *obj)
{
	char *path = xasprintf("%s/%s.%s.%s.%s", dir, obj_api_version(it->obj),
	    obj_kind(it->obj), *obj_namespace(it->obj) ? obj_namespace(it->obj) : "_",
	    obj_name(it->obj));
	for (char *p = path + strlen(dir) + 1; *p; p++)
		if (*p == '/')
			*p = '.';
	char *y = obj ? cli_yaml_dump(obj) : xstrdup("");
	int rc = obj ? file_write_atomic(path, y, strlen(y), false) : 0;
	free(y);
	free(path);
	return rc;
}

/* Runs `diff -u -N live merged` (or $KUBECTL_EXTERNAL_DIFF); its exit
 * code. */
static int
run_diff(const char *live, const char *merged)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		return 2;
	if (pid == 0) {
		const char *ext = getenv("KUBECTL_EXTERNAL_DIFF");
		if (ext && *ext) {
			char *cmd = xasprintf("%s \"$0\" \"$1\"", ext);
			execl("/bin/sh", "sh", "-c", cmd, live, merged, (char *)NULL);
		} else {
			execlp("diff", "diff", "-u", "-N", live, merged, (char *)NULL);
		}
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return 2;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 2;
}

int
cli_diff(struct cli_opts *o)
{
	struct cli_items items;
	if (!o->nfiles && !o->kustomize) {
		cli_err("must specify one of -f and -k");
		return 2;
	}
	if (cli_items_load(o, true, &items) < 0)
		return 2;
	char live[] = "/tmp/v6-diff-LIVE-XXXXXX", merged[] = "/tmp/v6-diff-MERGED-XXXXXX";
	if (!mkdtemp(live) || !mkdtemp(merged)) {
		cli_err("cannot make a temporary directory: %s", strerror(errno));
		cli_items_free(&items);
		return 2;
	}
	int rc = 0;
	for (size_t i = 0; i < items.n && rc == 0; i++) {
		json_t *cur = NULL, *next = NULL;
		if (cli_apply_preview(&items.v[i], &cur, &next) < 0) {
			rc = 2;
			break;
		}
		if (cur)
			cli_strip_server_fields(cur);
		cli_strip_server_fields(next);
		cli_diff_mask_secret(cur, next);
		if (write_obj(live, &items.v[i], cur) < 0 || write_obj(merged, &items.v[i], next) < 0)
			rc = 2;
		json_decref(cur);
		json_decref(next);
	}
	if (rc == 0)
		rc = run_diff(live, merged);
	util_remove_tree(live);
	util_remove_tree(merged);
	cli_items_free(&items);
	return rc;
}
