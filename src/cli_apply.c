/* cli_apply.c — `v6 apply` and `v6 create`: load and validate every
 * manifest, plan each object against the server (create, patch or
 * unchanged), have the server check every planned write with a dry run,
 * and only then write, so that a bad document means nothing is applied. */
#include "cli.h"
#include "ctrl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum action { ACT_CREATE, ACT_PATCH, ACT_UNCHANGED };

static const char *const action_done[] = { "created", "configured", "unchanged" };
static const char *const action_when[] = { "creating", "patching", "checking" };

struct plan {
	const struct cli_item *it;
	enum action act;
	json_t *body;		/* what is sent */
	bool ns_pending;	/* its namespace is created by this run */
	json_t *live;		/* the object on the server before, or NULL */
	json_t *result;		/* the server's answer to the last write sent */
};

const char *const cli_dry_said[] = { "", " (dry run)", " (server dry run)" };

int
cli_dry_run(const struct cli_opts *o, enum cli_dry *out)
{
	static const char *const names[] = { "none", "client", "server" };
	*out = CLI_DRY_NONE;
	if (o->dry_run == NULL)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcmp(o->dry_run, names[i]) == 0) {
			*out = (enum cli_dry)i;
			return 0;
		}
	cli_err("Invalid dry-run value (%s). Must be \"none\", \"server\", or \"client\".",
	    o->dry_run);
	return -EINVAL;
}

enum out { OUT_TEXT, OUT_NAME, OUT_JSON, OUT_YAML };

static const char *const out_names[] = { "", "name", "json", "yaml" };

static int
check_output(const struct cli_opts *o)
{
	if (o->output == NULL)
		return 0;
	for (size_t i = OUT_NAME; i < ARRAY_SIZE(out_names); i++)
		if (strcmp(o->output, out_names[i]) == 0)
			return 0;
	cli_err("unable to match a printer suitable for the output format \"%s\", "
	    "allowed formats are: json, name, yaml", o->output);
	return -EINVAL;
}

/* The format check_output accepted. */
static enum out
output_of(const struct cli_opts *o)
{
	for (size_t i = OUT_NAME; o->output && i < ARRAY_SIZE(out_names); i++)
		if (strcmp(o->output, out_names[i]) == 0)
			return (enum out)i;
	return OUT_TEXT;
}

static bool
is_namespace(const struct cli_item *it)
{
	return strcmp(it->k->kind, "Namespace") == 0 && it->k->group[0] == '\0';
}

/* Namespaces first, then everything else in file order. */
static void
order_items(struct cli_items *items)
{
	struct cli_item *v = xmalloc(items->n * sizeof *v);
	size_t n = 0;
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < items->n; i++)
			if (is_namespace(&items->v[i]) == (pass == 0))
				v[n++] = items->v[i];
	free(items->v);
	items->v = v;
}

static char *
item_path(const struct cli_item *it, bool named, const char *query)
{
	return cli_path(it->k, obj_namespace(it->obj), named ? obj_name(it->obj) : NULL, query);
}

/* Prints a server error; for Invalid, every cause with the file position
 * of its field. */
static void
print_server_error(const struct cli_resp *r, const struct cli_item *it, const char *when)
{
	char *msg = it->file ? xasprintf("error when %s \"%s\"", when, it->file) : NULL;
	json_t *causes = json_object_get(json_object_get(r->body, "details"), "causes");
	if (strcmp(cli_resp_reason(r), "Invalid") != 0 || json_array_size(causes) == 0 ||
	    !it->file) {
		cli_print_error(r, msg);
		free(msg);
		return;
	}
	fprintf(stderr, "Error from server (Invalid): %s%s%s\n", msg ? msg : "", msg ? ": " : "",
	    json_string_value(json_object_get(r->body, "message")));
	size_t i;
	json_t *c;
	json_array_foreach(causes, i, c) {
		const char *f = json_string_value(json_object_get(c, "field"));
		const char *m = json_string_value(json_object_get(c, "message"));
		struct field_err fe = { (char *)(f ? f : ""), (char *)"", (char *)(m ? m : ""),
		    0, 0 };
		obj_pos_lookup(it->pos, fe.field, &fe.line, &fe.col);
		char *s = field_err_format(&fe, it->file);
		fprintf(stderr, "%s\n", s);
		free(s);
	}
	free(msg);
}

static json_t *
last_applied(const json_t *live)
{
	json_t *ann = obj_get_path(live, "metadata.annotations");
	const char *s = json_string_value(json_object_get(ann, OBJ_LAST_APPLIED));
	return s ? json_loads(s, 0, NULL) : NULL;
}

/* GETs the object and decides what apply does with it; *live (may be
 * NULL) gets the live object, NULL when there is none. */
static int
plan_apply(const struct cli_item *it, struct plan *p, json_t **live)
{
	struct cli_resp r;
	char *path = item_path(it, true, NULL);
	int rc = cli_http("GET", path, NULL, NULL, &r);
	free(path);
	if (rc < 0)
		return rc;
	json_t *cfg = obj_apply_config(it->obj);
	json_t *send = obj_apply_annotate(cfg);
	p->it = it;
	if (r.status == 404) {
		p->act = ACT_CREATE;
		p->body = json_incref(send);
	} else if (r.status == 200) {
		if (live)
			*live = json_incref(r.body);
		json_t *last = last_applied(r.body);
		p->act = last && json_equal(last, cfg) ? ACT_UNCHANGED : ACT_PATCH;
		p->body = p->act == ACT_PATCH ? obj_apply_patch(last, send) : NULL;
		if (p->body)
			cli_hpa_guard_replicas(it, r.body, p->body);
		json_decref(last);
	} else {
		print_server_error(&r, it, "retrieving current configuration of");
		rc = -EIO;
	}
	json_decref(send);
	json_decref(cfg);
	cli_resp_free(&r);
	return rc;
}

/* Sends the planned write (with ?dryRun=All when dry); *answer (may be
 * NULL) gets the server's object. */
static int
plan_send_answer(const struct plan *p, bool dry, json_t **answer)
{
	struct cli_resp r;
	if (p->act == ACT_UNCHANGED)
		return 0;
	char *path = item_path(p->it, p->act == ACT_PATCH, dry ? "dryRun=All" : NULL);
	int rc = p->act == ACT_CREATE ? cli_http("POST", path, NULL, p->body, &r)
	    : cli_http("PATCH", path, "application/merge-patch+json", p->body, &r);
	free(path);
	if (rc < 0)
		return rc;
	if (r.status >= 300) {
		print_server_error(&r, p->it, action_when[p->act]);
		rc = -EIO;
	} else if (answer) {
		*answer = json_incref(r.body);
	}
	cli_resp_free(&r);
	return rc;
}

/* Sends the planned write; p->result gets the server's answer. */
static int
plan_send(struct plan *p, bool dry)
{
	json_t *answer = NULL;
	int rc = plan_send_answer(p, dry, &answer);
	if (answer) {
		json_decref(p->result);
		p->result = answer;
	}
	return rc;
}

static void
plan_free(struct plan *p)
{
	json_decref(p->body);
	json_decref(p->live);
	json_decref(p->result);
}

int
cli_apply_preview(const struct cli_item *it, json_t **live, json_t **next)
{
	struct plan p = { 0 };
	*live = *next = NULL;
	int rc = plan_apply(it, &p, live);
	if (rc == 0 && p.act == ACT_UNCHANGED)
		*next = json_deep_copy(*live);
	else if (rc == 0)
		rc = plan_send_answer(&p, true, next);
	json_decref(p.body);
	if (rc == 0 && !*next)
		rc = -EIO;
	if (rc < 0) {
		json_decref(*live);
		*live = NULL;
	}
	return rc;
}

/* The object `apply -o json` shows for a plan (new reference): what the
 * server answered to the write or its dry run, else the live object when
 * unchanged, else what a client dry run would make of it. */
static json_t *
plan_object(const struct plan *p)
{
	if (p->result)
		return json_incref(p->result);
	if (p->act == ACT_UNCHANGED && p->live)
		return json_incref(p->live);
	if (p->act == ACT_PATCH && p->live) {
		char *err = NULL;
		json_t *v = patch_merge(p->live, p->body, &err);
		free(err);
		if (v)
			return v;
	}
	return json_incref(p->body ? p->body : p->it->obj);
}

/* -o json|yaml: one object alone, several as a v1 List (as kubectl). */
static void
print_objects(const struct cli_opts *o, json_t *objs)
{
	if (json_array_size(objs) == 0)
		return;
	json_t *v = json_array_size(objs) == 1 ? json_incref(json_array_get(objs, 0))
	    : json_pack("{s:s, s:O, s:s, s:{s:s}}", "apiVersion", "v1", "items", objs, "kind",
		"List", "metadata", "resourceVersion", "");
	char *s = output_of(o) == OUT_JSON ? cli_json_dump(v) : cli_yaml_dump(v);
	fputs(s, stdout);
	free(s);
	json_decref(v);
}

/* Prints one result, or with -o json|yaml adds its object to objs. */
static void
print_result(const struct cli_opts *o, const struct plan *p, enum cli_dry dry, json_t *objs)
{
	char ref[512];
	enum out out = output_of(o);
	if (out == OUT_JSON || out == OUT_YAML) {
		json_array_append_new(objs, plan_object(p));
		return;
	}
	cli_obj_ref(p->it->k, obj_name(p->it->obj), ref, sizeof ref);
	if (out == OUT_NAME)
		printf("%s\n", ref);
	else
		printf("%s %s%s\n", ref, action_done[p->act], cli_dry_said[dry]);
}

/* A namespaced object whose namespace a Namespace of this run creates
 * cannot be checked by the server before that namespace exists. */
static void
mark_pending(struct plan *plans, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!is_namespace(plans[i].it) || plans[i].act != ACT_CREATE)
			continue;
		const char *ns = obj_name(plans[i].it->obj);
		for (size_t j = 0; j < n; j++)
			if (plans[j].it->k->namespaced &&
			    strcmp(obj_namespace(plans[j].it->obj), ns) == 0)
				plans[j].ns_pending = true;
	}
}

static int
server_check(struct plan *plans, size_t n)
{
	int rc = 0;
	mark_pending(plans, n);
	for (size_t i = 0; i < n; i++) {
		if (plans[i].ns_pending)
			continue;
		int r = plan_send(&plans[i], true);
		if (r == -EIO && rc == 0)
			rc = r;
		if (r < 0 && r != -EIO)
			return r;
	}
	return rc;
}

static int
run_plans(const struct cli_opts *o, struct plan *plans, size_t n, enum cli_dry dry)
{
	int rc = 0;
	if (dry != CLI_DRY_CLIENT && server_check(plans, n) < 0) {
		fputs("error: nothing was applied: the server rejected the objects above\n",
		    stderr);
		return 1;
	}
	json_t *objs = json_array();
	for (size_t i = 0; i < n; i++) {
		if (dry == CLI_DRY_NONE && plan_send(&plans[i], false) < 0) {
			rc = 1;
			continue;
		}
		print_result(o, &plans[i], dry, objs);
	}
	print_objects(o, objs);
	json_decref(objs);
	return rc;
}

static int
apply_items(const struct cli_opts *o, struct cli_items *items, bool create_only)
{
	enum cli_dry dry;
	if (cli_dry_run(o, &dry) < 0 || check_output(o) < 0)
		return 1;
	order_items(items);
	struct plan *plans = xcalloc(items->n, sizeof *plans);
	int rc = 0;
	for (size_t i = 0; i < items->n && rc == 0; i++) {
		if (!create_only) {
			rc = plan_apply(&items->v[i], &plans[i], &plans[i].live);
			continue;
		}
		plans[i] = (struct plan){ &items->v[i], ACT_CREATE, json_incref(items->v[i].obj),
		    false, NULL, NULL };
	}
	rc = rc < 0 ? 1 : run_plans(o, plans, items->n, dry);
	for (size_t i = 0; i < items->n; i++)
		plan_free(&plans[i]);
	free(plans);
	return rc;
}

static int
need_files(const struct cli_opts *o)
{
	if (o->nfiles || o->kustomize)
		return 0;
	cli_err("must specify one of -f and -k");
	fprintf(stderr, "See 'v6 %s --help' for usage.\n", o->verb);
	return 1;
}

/* apply --wait: every applied workload in turn until rolled out or
 * complete; the first that fails, aborts or outlives --timeout (default
 * 5m, one deadline for all) ends it with 1. */
static int
wait_applied(const struct cli_opts *o, const struct cli_items *items)
{
	enum cli_dry dry;
	if (cli_dry_run(o, &dry) < 0 || dry != CLI_DRY_NONE)
		return 0;
	int64_t ms = cli_timeout_ms(o, 5 * 60 * 1000);
	if (ms < 0)
		return 1;
	int64_t deadline = ms ? time_mono_ms() + ms : 0;
	for (size_t i = 0; i < items->n; i++) {
		const struct cli_item *it = &items->v[i];
		if (!cli_rollout_waits_for(it->k))
			continue;
		const char *ns = *obj_namespace(it->obj) ? obj_namespace(it->obj) : cli_ns(o);
		if (cli_rollout_wait(it->k, ns, obj_name(it->obj), deadline) != 0)
			return 1;
	}
	return 0;
}

int
cli_apply(struct cli_opts *o)
{
	struct cli_items items;
	if (need_files(o))
		return 1;
	if (o->nargs) {
		cli_err("unexpected args: %s", o->args[0]);
		return 1;
	}
	if (cli_items_load(o, true, &items) < 0)
		return 1;
	int rc = apply_items(o, &items, false);
	if (rc == 0 && o->wait && strcmp(o->wait, "false") != 0)
		rc = wait_applied(o, &items);
	cli_items_free(&items);
	return rc;
}

/* Creates one object made here (not from a file) and prints the result;
 * 0 or 1 (the exit code). */
static int
create_one(const struct cli_opts *o, const struct cli_item *it, enum cli_dry dry)
{
	struct plan p = { it, ACT_CREATE, json_incref(it->obj), false, NULL, NULL };
	json_t *objs = json_array();
	int rc = 0;
	if (dry != CLI_DRY_CLIENT && plan_send(&p, dry == CLI_DRY_SERVER) < 0)
		rc = 1;
	else
		print_result(o, &p, dry, objs);
	print_objects(o, objs);
	json_decref(objs);
	plan_free(&p);
	return rc;
}

static int
create_namespace(const struct cli_opts *o)
{
	enum cli_dry dry;
	if (o->nargs != 2) {
		cli_err("exactly one NAME is required, got %zu", o->nargs - 1);
		return 1;
	}
	if (cli_dry_run(o, &dry) < 0 || check_output(o) < 0)
		return 1;
	const struct kind *k = kind_find_gvk("v1", "Namespace");
	json_t *ns = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
	    "metadata", "name", o->args[1]);
	struct cli_item it = { ns, k, NULL, NULL, 0 };
	int rc = create_one(o, &it, dry);
	json_decref(ns);
	return rc;
}

/* kubectl create job NAME --from=cronjob/CJ: the CronJob's jobTemplate
 * with a controller reference to it and cronjob.kubernetes.io/instantiate:
 * manual (ctrl_cronjob.c makes it, as the controller's own Jobs). */
static int
create_job_from(const struct cli_opts *o)
{
	enum cli_dry dry;
	if (o->nargs != 2) {
		cli_err("exactly one NAME is required, got %zu", o->nargs - 1);
		return 1;
	}
	if (!o->from || (strncmp(o->from, "cronjob/", 8) && strncmp(o->from, "cj/", 3) &&
	    strncmp(o->from, "cronjobs/", 9))) {
		cli_err("from must be an existing cronjob: --from=cronjob/NAME");
		return 1;
	}
	if (cli_dry_run(o, &dry) < 0 || check_output(o) < 0)
		return 1;
	const char *cj_name = strchr(o->from, '/') + 1;
	char *path = cli_path(kind_find_gvk("batch/v1", "CronJob"), cli_ns(o), cj_name, NULL);
	json_t *cj = NULL;
	int rc = cli_get_json(path, &cj);
	free(path);
	if (rc < 0)
		return 1;
	json_t *job = cronjob_job(cj, o->args[1], 0, true);
	json_decref(cj);
	struct cli_item it = { job, kind_find_gvk("batch/v1", "Job"), NULL, NULL, 0 };
	rc = create_one(o, &it, dry);
	json_decref(job);
	return rc;
}

int
cli_create(struct cli_opts *o)
{
	struct cli_items items;
	if (o->nargs > 0) {
		if (strcmp(o->args[0], "namespace") == 0 || strcmp(o->args[0], "ns") == 0)
			return create_namespace(o);
		if (strcmp(o->args[0], "job") == 0)
			return create_job_from(o);
		cli_err("unknown command \"%s\" for \"v6 create\"", o->args[0]);
		fputs("See 'v6 create --help' for usage.\n", stderr);
		return 1;
	}
	if (need_files(o))
		return 1;
	if (cli_items_load(o, true, &items) < 0)
		return 1;
	int rc = apply_items(o, &items, true);
	cli_items_free(&items);
	return rc;
}
