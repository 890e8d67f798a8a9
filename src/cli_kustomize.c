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

/* Runs `diff -u -N live merged` (or $KUBECTL_EXTERNAL_DIFF), with label
 * (when not NULL) naming both sides as a/label and b/label; its exit
 * code. */
static int
run_diff(const char *live, const char *merged, const char *label)
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
		} else if (label) {
			char *a = xasprintf("a/%s", label), *b = xasprintf("b/%s", label);
			execlp("diff", "diff", "-u", "-N", "--label", a, "--label", b, live, merged,
			    (char *)NULL);
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
cli_text_diff(const char *label, const char *before, const char *after)
{
	char dir[] = "/tmp/v6-diff-XXXXXX";
	if (!mkdtemp(dir)) {
		cli_err("cannot make a temporary directory: %s", strerror(errno));
		return 2;
	}
	char *a = xasprintf("%s/before", dir), *b = xasprintf("%s/after", dir);
	int rc = file_write_atomic(a, before, strlen(before), false) < 0 ||
	    file_write_atomic(b, after, strlen(after), false) < 0 ? 2 : run_diff(a, b, label);
	util_remove_tree(dir);
	free(a);
	free(b);
	return rc;
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
			obj_strip_server_fields(cur);
		obj_strip_server_fields(next);
		obj_mask_secret(cur, next);
		if (write_obj(live, &items.v[i], cur) < 0 || write_obj(merged, &items.v[i], next) < 0)
			rc = 2;
		json_decref(cur);
		json_decref(next);
	}
	if (rc == 0)
		rc = run_diff(live, merged, NULL);
	util_remove_tree(live);
	util_remove_tree(merged);
	cli_items_free(&items);
	return rc;
}
