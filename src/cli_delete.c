/* cli_delete.c — `v6 delete` by file, by name, by label selector or --all,
 * with kubectl's cascade (propagationPolicy), --dry-run=client|server and,
 * by default, waiting until every deleted object is really gone
 * (cli_wait_gone). */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct victim {
	const struct kind *k;
	char *ns;
	char *name;
	char *file;	/* -f source for messages, or NULL */
	char *uid;	/* set once deleted */
};

struct del {
	struct cli_opts *o;
	struct victim *v;
	size_t n;
	const char *policy;
	enum cli_dry dry;	/* client: only looked up; server: ?dryRun=All */
	int rc;
};

static void
victim_add(struct del *d, const struct kind *k, const char *ns, const char *name,
    const char *file)
{
	d->v = xrealloc(d->v, (d->n + 1) * sizeof *d->v);
	d->v[d->n++] = (struct victim){ k, xstrdup(ns), xstrdup(name), file ? xstrdup(file)
	    : NULL, NULL };
}

static int
parse_cascade(const char *s, const char **policy)
{
	static const struct { const char *flag, *policy; } map[] = {
		{ "background", "Background" }, { "true", "Background" },
		{ "foreground", "Foreground" }, { "orphan", "Orphan" }, { "false", "Orphan" },
	};
	*policy = "Background";
	if (s == NULL)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (strcmp(s, map[i].flag) == 0) {
			*policy = map[i].policy;
			return 0;
		}
	cli_err("invalid cascade value (%s). Must be \"background\", \"foreground\", or "
	    "\"orphan\"", s);
	return -EINVAL;
}

static int
from_files(struct del *d)
{
	struct cli_items items;
	if (cli_items_load(d->o, false, &items) < 0)
		return -EINVAL;
	for (size_t i = 0; i < items.n; i++)
		victim_add(d, items.v[i].k, items.v[i].k->namespaced ? obj_namespace(items.v[i].obj)
		    : "", obj_name(items.v[i].obj), items.v[i].file);
	cli_items_free(&items);
	return 0;
}

static int
from_selector(struct del *d, const struct kind *k)
{
	struct cli_resp r;
	struct buf q = BUF_INIT;
	if (d->o->selector)
		cli_query_add(&q, "labelSelector", d->o->selector);
	char *path = cli_path(k, cli_ns(d->o), NULL, q.data);
	buf_free(&q);
	int rc = cli_http("GET", path, NULL, NULL, &r);
	free(path);
	if (rc < 0)
		return rc;
	if (r.status != 200) {
		cli_print_error(&r, NULL);
		rc = -EIO;
	}
	size_t i;
	json_t *it;
	json_array_foreach(json_object_get(r.body, "items"), i, it)
		victim_add(d, k, obj_namespace(it), obj_name(it), NULL);
	cli_resp_free(&r);
	return rc;
}

static int
from_args(struct del *d)
{
	struct cli_opts *o = d->o;
	const char *ns = cli_ns(o);
	if (strchr(o->args[0], '/')) {
		for (size_t i = 0; i < o->nargs; i++) {
			const char *s = strchr(o->args[i], '/');
			if (s == NULL) {
				cli_err("there is no need to specify a resource type as a separate "
				    "argument when passing arguments in resource/name form");
				return -EINVAL;
			}
			char *kind = xstrndup(o->args[i], (size_t)(s - o->args[i]));
			const struct kind *k = cli_kind(kind);
			free(kind);
			if (k == NULL)
				return -EINVAL;
			victim_add(d, k, ns, s + 1, NULL);
		}
		return 0;
	}
	const struct kind *k = cli_kind(o->args[0]);
	if (k == NULL)
		return -EINVAL;
	if (o->nargs == 1 && !o->selector && !o->all) {
		cli_err("resource(s) were provided, but no name, label selector, or --all flag "
		    "specified");
		return -EINVAL;
	}
	if (o->nargs == 1)
		return from_selector(d, k);
	for (size_t i = 1; i < o->nargs; i++)
		victim_add(d, k, ns, o->args[i], NULL);
	return 0;
}

static void
delete_one(struct del *d, struct victim *v)
{
	struct cli_resp r;
	struct buf q = BUF_INIT;
	char kr[128];
	if (d->dry != CLI_DRY_CLIENT)
		cli_query_add(&q, "propagationPolicy", d->policy);
	if (d->dry == CLI_DRY_SERVER)
		cli_query_add(&q, "dryRun", "All");
	char *path = cli_path(v->k, v->ns, v->name, q.data);
	buf_free(&q);
	int rc = cli_http(d->dry == CLI_DRY_CLIENT ? "GET" : "DELETE", path, NULL, NULL, &r);
	free(path);
	if (rc < 0) {
		d->rc = 1;
		return;
	}
	if (r.status == 404 && d->o->ignore_not_found) {
		/* nothing to say */
	} else if (r.status >= 300) {
		char *when = v->file ? xasprintf("error when deleting \"%s\"", v->file) : NULL;
		cli_print_error(&r, when);
		free(when);
		d->rc = 1;
	} else {
		const char *uid = obj_uid(r.body);
		if (!*uid)	/* a Status answer carries the uid in details */
			uid = json_string_value(obj_get_path(r.body, "details.uid"));
		if (d->dry == CLI_DRY_NONE)	/* a dry run has nothing to wait for */
			v->uid = xstrdup(uid ? uid : "");
		if (d->o->output)
			printf("%s/%s\n", cli_kind_ref(v->k, kr, sizeof kr), v->name);
		else
			printf("%s \"%s\" deleted%s\n", cli_kind_ref(v->k, kr, sizeof kr), v->name,
			    cli_dry_said[d->dry]);
		fflush(stdout);
	}
	cli_resp_free(&r);
}

static int
wait_all(struct del *d)
{
	int64_t ms = cli_timeout_ms(d->o, 60000);
	int64_t deadline = time_mono_ms() + ms;
	for (size_t i = 0; i < d->n; i++) {
		struct victim *v = &d->v[i];
		if (v->uid == NULL)
			continue;
		int rc = cli_wait_gone(v->k, v->ns, v->name, v->uid, deadline);
		if (rc == -ETIMEDOUT)
			fprintf(stderr, "error: timed out waiting for the condition on %s/%s\n",
			    v->k->plural, v->name);
		if (rc < 0)
			d->rc = 1;
	}
	return 0;
}

static int
check_args(const struct cli_opts *o)
{
	if (o->output && strcmp(o->output, "name") != 0) {
		cli_err("unexpected -o output mode \"%s\", the flag 'output' must be one of 'name'",
		    o->output);
		return -EINVAL;
	}
	if (o->wait && strcmp(o->wait, "true") != 0 && strcmp(o->wait, "false") != 0) {
		cli_err("invalid argument \"%s\" for \"--wait\" flag", o->wait);
		return -EINVAL;
	}
	bool files = o->nfiles || o->kustomize;
	if (files && o->nargs) {
		cli_err("when -f FILE or -k DIR is given, no KIND or NAME arguments are accepted");
		return -EINVAL;
	}
	if (!files && !o->nargs) {
		cli_err("you must provide one or more resources by argument or filename");
		return -EINVAL;
	}
	return cli_timeout_ms(o, 0) < 0 ? -EINVAL : 0;
}

int
cli_delete(struct cli_opts *o)
{
	struct del d = { .o = o };
	if (check_args(o) < 0 || parse_cascade(o->cascade, &d.policy) < 0 ||
	    cli_dry_run(o, &d.dry) < 0)
		return 1;
	int rc = o->nfiles || o->kustomize ? from_files(&d) : from_args(&d);
	if (rc == 0 && d.n == 0 && !o->ignore_not_found)
		fputs("No resources found\n", stderr);
	for (size_t i = 0; rc == 0 && i < d.n; i++)
		delete_one(&d, &d.v[i]);
	if (rc == 0 && (o->wait == NULL || strcmp(o->wait, "true") == 0))
		wait_all(&d);
	for (size_t i = 0; i < d.n; i++) {
		free(d.v[i].ns);
		free(d.v[i].name);
		free(d.v[i].file);
		free(d.v[i].uid);
	}
	free(d.v);
	return rc < 0 ? 1 : d.rc;
}
