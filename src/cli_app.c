/* cli_app.c — `v6 app get|sync|diff|history|rollback NAME`, as the argocd
 * CLI's app commands: they read and patch the Application object (a sync
 * or rollback is an `operation` the controller, ctrl_app.c, runs) and the
 * applications/NAME/diff subresource. -o json|yaml prints the Application
 * (get, and sync / rollback once the operation ended) or its history. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const struct kind *
app_kind(void)
{
	return kind_find_gvk("argoproj.io/v1alpha1", "Application");
}

static int
get_app(const struct cli_opts *o, const char *name, json_t **out)
{
	char *path = cli_path(app_kind(), cli_ns(o), name, NULL);
	int rc = cli_get_json(path, out);
	free(path);
	return rc;
}

/* -o: 0 for the text, 1 json, 2 yaml; -1 with the error printed. */
static int
out_format(const struct cli_opts *o)
{
	static const char *const names[] = { "json", "yaml" };
	for (size_t i = 0; o->output && i < ARRAY_SIZE(names); i++)
		if (!strcmp(o->output, names[i]))
			return (int)i + 1;
	if (!o->output)
		return 0;
	cli_err("unknown output format \"%s\": v6 app takes -o json or -o yaml", o->output);
	return -1;
}

/* Prints doc as -o asked (fmt 1 json, 2 yaml), for scripts and CI. */
static void
print_doc(int fmt, const json_t *doc)
{
	char *s = fmt == 1 ? cli_json_dump(doc) : cli_yaml_dump(doc);
	fputs(s, stdout);
	free(s);
}

static const char *
or_dash(const char *s)
{
	return s && *s ? s : "-";
}

static json_t *
row(const char *const *cells)
{
	json_t *r = json_array();
	for (; *cells; cells++)
		json_array_append_new(r, json_string(*cells));
	return r;
}

static int
app_get(const struct cli_opts *o, const char *name)
{
	json_t *app;
	int fmt = out_format(o);
	if (fmt < 0 || get_app(o, name, &app) < 0)
		return 1;
	if (fmt) {
		print_doc(fmt, app);
		json_decref(app);
		return 0;
	}
	const json_t *auto_ = obj_get_path(app, "spec.syncPolicy.automated");
	printf("Name:               %s/%s\n", obj_namespace(app), obj_name(app));
	printf("Project:            %s\n", or_dash(obj_str_at(app, "spec.project")));
	printf("Server:             %s\n", or_dash(obj_str_at(app, "spec.destination.server")));
	printf("Namespace:          %s\n", or_dash(obj_str_at(app,
	    "spec.destination.namespace")));
	printf("Repo:               %s\n", obj_str_at(app, "spec.source.repoURL"));
	printf("Target:             %s\n", or_dash(obj_str_at(app,
	    "spec.source.targetRevision")));
	printf("Path:               %s\n", or_dash(obj_str_at(app, "spec.source.path")));
	printf("SyncPolicy:         %s%s%s\n", auto_ ? "Automated" : "Manual",
	    json_is_true(json_object_get(auto_, "prune")) ? " (Prune)" : "",
	    json_is_true(json_object_get(auto_, "selfHeal")) ? " (SelfHeal)" : "");
	printf("Sync Status:        %s to %s\n", or_dash(obj_str_at(app, "status.sync.status")),
	    or_dash(obj_str_at(app, "status.sync.revision")));
	printf("Health Status:      %s\n", or_dash(obj_str_at(app, "status.health.status")));
	size_t i;
	const json_t *c;
	json_array_foreach(obj_get_path(app, "status.conditions"), i, c)
		printf("Condition:          %s: %s\n", obj_str(c, "type"), obj_str(c, "message"));
	const json_t *os = obj_get_path(app, "status.operationState");
	if (os)
		printf("Operation:          Sync %s: %s\n", obj_str(os, "phase"),
		    obj_str(os, "message"));
	json_t *rows = json_array();
	json_array_append_new(rows, row((const char *[]){ "GROUP", "KIND", "NAMESPACE", "NAME",
	    "STATUS", "HEALTH", "HOOK", "MESSAGE", NULL }));
	json_array_foreach(obj_get_path(app, "status.resources"), i, c)
		json_array_append_new(rows, row((const char *[]){ obj_str(c, "group"),
		    obj_str(c, "kind"), obj_str(c, "namespace"), obj_str(c, "name"),
		    obj_str(c, "status"), obj_str_at(c, "health.status"),
		    json_is_true(json_object_get(c, "hook")) ? "hook" : "",
		    obj_str_at(c, "health.message"), NULL }));
	putchar('\n');
	cli_print_rows(rows);
	json_decref(rows);
	json_decref(app);
	return 0;
}

/* Sets operation on the Application (a JSON merge patch). */
static int
request_op(const struct cli_opts *o, const char *name, json_t *op)
{
	char *path = cli_path(app_kind(), cli_ns(o), name, NULL);
	json_t *patch = json_pack("{s:o}", "operation", op);
	struct cli_resp r;
	int rc = cli_http("PATCH", path, "application/merge-patch+json", patch, &r);
	json_decref(patch);
	free(path);
	if (rc < 0)
		return rc;
	if (r.status >= 300) {
		cli_print_error(&r, NULL);
		rc = -EIO;
	}
	cli_resp_free(&r);
	return rc;
}

/* Waits until the operation requested at or after start is no longer
 * Running; prints its outcome. 0 when it Succeeded. */
static int
wait_op(const struct cli_opts *o, const char *name, int64_t start_ms)
{
	int64_t ms = cli_timeout_ms(o, 5 * 60 * 1000);
	if (ms < 0)
		return 1;
	int64_t deadline = time_mono_ms() + (ms ? ms : 5 * 60 * 1000);
	while (time_mono_ms() < deadline) {
		json_t *app;
		if (get_app(o, name, &app) < 0)
			return 1;
		const json_t *os = obj_get_path(app, "status.operationState");
		const char *phase = obj_str(os, "phase");
		bool pending = json_object_get(app, "operation") != NULL;
		bool mine = obj_time_ms(json_object_get(os, "startedAt")) >= start_ms / 1000 * 1000;
		if (!pending && mine && *phase && strcmp(phase, "Running")) {
			if (out_format(o) > 0)
				print_doc(out_format(o), app);
			else
				printf("Operation:          Sync\nPhase:              %s\n"
				    "Message:            %s\nRevision:           %s\n", phase,
				    obj_str(os, "message"), obj_str_at(os, "syncResult.revision"));
			int rc = strcmp(phase, "Succeeded") ? 1 : 0;
			json_decref(app);
			return rc;
		}
		json_decref(app);
		usleep(200 * 1000);
	}
	return cli_err("timed out waiting for the sync of %s", name);
}

/* GET the Application's diff subresource: 0 with *d, or < 0 (printed). */
static int
get_diff(const struct cli_opts *o, const char *name, json_t **d)
{
	char *path = cli_path(app_kind(), cli_ns(o), name, NULL);
	char *sub = xasprintf("%s/diff", path);
	free(path);
	int rc = cli_get_json(sub, d);
	free(sub);
	return rc;
}

/* `v6 app sync --dry-run[=server|client]`: what a sync would do to each
 * out-of-sync resource, from the diff subresource (the server's own dry
 * run of each apply), as kubectl prints an apply's results; nothing is
 * written and no operation starts. Exit 1 when a resource would fail. */
static int
app_sync_dry(const struct cli_opts *o, const char *name, enum cli_dry dry)
{
	json_t *d;
	int rc = get_diff(o, name, &d);
	if (rc < 0)
		return 1;
	size_t i, n = 0;
	const json_t *e;
	rc = 0;
	json_array_foreach(json_object_get(d, "items"), i, e) {
		bool gone = json_is_null(json_object_get(e, "target"));
		const char *what = json_is_null(json_object_get(e, "live")) ? "created" : !gone ?
		    "configured" : o->prune ? "pruned" : "requires pruning (--prune)";
		char *kind = xstrdup(obj_str(e, "kind"));
		for (char *c = kind; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		if (*obj_str(e, "error")) {
			fprintf(stderr, "%s%s%s/%s: %s\n", kind, *obj_str(e, "group") ? "." : "",
			    obj_str(e, "group"), obj_str(e, "name"), obj_str(e, "error"));
			rc = 1;
		} else {
			printf("%s%s%s/%s %s%s\n", kind, *obj_str(e, "group") ? "." : "",
			    obj_str(e, "group"), obj_str(e, "name"), what, cli_dry_said[dry]);
		}
		free(kind);
		n++;
	}
	if (n == 0)
		printf("application %s is synced to %s: nothing to change%s\n", name,
		    obj_str(d, "revision"), cli_dry_said[dry]);
	json_decref(d);
	return rc;
}

static int
app_sync(const struct cli_opts *o, const char *name)
{
	enum cli_dry dry;
	if (out_format(o) < 0 || cli_dry_run(o, &dry) < 0)
		return 1;
	if (dry != CLI_DRY_NONE)
		return app_sync_dry(o, name, dry);
	int64_t start = time_now_ms();
	json_t *op = json_pack("{s:{s:b}, s:{s:s}}", "sync", "prune", o->prune,
	    "initiatedBy", "username", "admin");
	if (request_op(o, name, op) < 0)
		return 1;
	return wait_op(o, name, start);
}

static int
app_history(const struct cli_opts *o, const char *name)
{
	json_t *app;
	int fmt = out_format(o);
	if (fmt < 0 || get_app(o, name, &app) < 0)
		return 1;
	if (fmt) {
		const json_t *h = obj_get_path(app, "status.history");
		json_t *none = json_array();
		print_doc(fmt, h ? h : none);
		json_decref(none);
		json_decref(app);
		return 0;
	}
	json_t *rows = json_array();
	json_array_append_new(rows, row((const char *[]){ "ID", "DATE", "REVISION", NULL }));
	size_t i;
	const json_t *h;
	json_array_foreach(obj_get_path(app, "status.history"), i, h) {
		char id[32], rev[256];
		snprintf(id, sizeof id, "%lld", (long long)obj_int_at(h, "id", 0));
		snprintf(rev, sizeof rev, "%s (%s)", obj_str_at(h, "source.targetRevision")[0] ?
		    obj_str_at(h, "source.targetRevision") : "HEAD", obj_str(h, "revision"));
		json_array_append_new(rows, row((const char *[]){ id, obj_str(h, "deployedAt"),
		    rev, NULL }));
	}
	cli_print_rows(rows);
	json_decref(rows);
	json_decref(app);
	return 0;
}

static int
app_rollback(const struct cli_opts *o, const char *name, const char *id_s)
{
	json_t *app;
	if (out_format(o) < 0 || get_app(o, name, &app) < 0)
		return 1;
	if (obj_get_path(app, "spec.syncPolicy.automated")) {
		json_decref(app);
		return cli_err("rollback cannot be initiated when auto-sync is enabled");
	}
	long long id = id_s ? atoll(id_s) : -1;
	const json_t *hist = obj_get_path(app, "status.history"), *h, *pick = NULL;
	size_t i, n = json_array_size(hist);
	json_array_foreach(hist, i, h)
		if (id_s ? obj_int_at(h, "id", 0) == id : i + 2 == n)
			pick = h;
	if (!pick) {
		json_decref(app);
		return id_s ? cli_err("application %s does not have deployment id '%s' in history",
		    name, id_s) : cli_err("application %s has no previous deployment", name);
	}
	int64_t start = time_now_ms();
	json_t *op = json_pack("{s:{s:s, s:O}, s:{s:s}}", "sync", "revision",
	    obj_str(pick, "revision"), "source", json_object_get(pick, "source"),
	    "initiatedBy", "username", "admin");
	json_decref(app);
	if (request_op(o, name, op) < 0)
		return 1;
	return wait_op(o, name, start);
}

static char *
write_yaml(const char *dir, const json_t *e, const char *what)
{
	char *path = xasprintf("%s/%s-%s-%s-%s", dir, obj_str(e, "kind"),
	    *obj_str(e, "namespace") ? obj_str(e, "namespace") : "_", obj_str(e, "name"), what);
	const json_t *o = json_object_get(e, what);
	char *text = json_is_object(o) ? cli_yaml_dump(o) : xstrdup("");
	FILE *f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
	free(text);
	return path;
}

/* Prints the live and target state of every out-of-sync resource with
 * `diff -u` (as argocd app diff); exit 1 when something differs. */
static int
app_diff(const struct cli_opts *o, const char *name)
{
	json_t *d;
	int rc = get_diff(o, name, &d);
	if (rc < 0)
		return 2;
	char dir[] = "/tmp/v6-app-diff-XXXXXX";
	if (!mkdtemp(dir)) {
		json_decref(d);
		return cli_err("cannot make a temporary directory: %s", strerror(errno));
	}
	size_t i;
	const json_t *e;
	rc = 0;
	json_array_foreach(json_object_get(d, "items"), i, e) {
		printf("\n===== %s/%s %s/%s ======\n", obj_str(e, "group"), obj_str(e, "kind"),
		    obj_str(e, "namespace"), obj_str(e, "name"));
		fflush(stdout);
		char *live = write_yaml(dir, e, "live"), *target = write_yaml(dir, e, "target");
		pid_t pid = fork();
		if (pid == 0) {
			execlp("diff", "diff", "-u", "-N", live, target, (char *)NULL);
			_exit(127);
		}
		int st = 0;
		if (pid > 0)
			waitpid(pid, &st, 0);
		unlink(live);
		unlink(target);
		free(live);
		free(target);
		rc = 1;
	}
	rmdir(dir);
	json_decref(d);
	return rc;
}

int
cli_app(struct cli_opts *o)
{
	static const char *const subs[] = { "get", "sync", "diff", "history", "rollback" };
	if (o->nargs < 2) {
		cli_err("usage: v6 app get|sync|diff|history|rollback NAME");
		return 1;
	}
	const char *sub = o->args[0], *name = o->args[1];
	size_t want = !strcmp(sub, "rollback") ? 3 : 2;
	if (o->nargs > want || (o->nargs < want && strcmp(sub, "rollback")))
		return cli_err("unexpected args: %s", o->args[want]);
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++) {
		if (strcmp(sub, subs[i]))
			continue;
		switch (i) {
		case 0: return app_get(o, name);
		case 1: return app_sync(o, name);
		case 2: return app_diff(o, name);
		case 3: return app_history(o, name);
		default: return app_rollback(o, name, o->nargs > 2 ? o->args[2] : NULL);
		}
	}
	return cli_err("unknown command \"%s\" for \"v6 app\"", sub);
}
