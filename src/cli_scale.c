/* cli_scale.c — `v6 scale`: sets spec.replicas through the /scale
 * subresource as kubectl does: with --current-replicas it first GETs the
 * Scale, checks the precondition and patches with the resourceVersion it
 * read, so a concurrent change makes the patch fail instead of winning;
 * --dry-run=server sends the patch with ?dryRun=All. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const scalable[] = { "Deployment", "ReplicaSet", "StatefulSet" };

static int
scale_one(const struct cli_opts *o, const struct kind *k, const char *name)
{
	char ref[256];
	char *base = cli_path(k, cli_ns(o), name, NULL);
	char *path = xasprintf("%s/scale", base);
	json_t *patch = json_pack("{s:{s:I}}", "spec", "replicas", (json_int_t)o->replicas);
	json_t *cur = NULL;
	struct cli_resp r = { 0 };
	int rc = 1;
	enum cli_dry dry;
	free(base);
	if (cli_dry_run(o, &dry) < 0)
		goto out;
	if (cli_flag_given(o, "current-replicas")) {
		if (cli_get_json(path, &cur) < 0)
			goto out;
		int64_t have = json_integer_value(obj_get_path(cur, "spec.replicas"));
		if (have != o->current_replicas) {
			cli_err("Expected replicas to be %lld, was %lld",
			    (long long)o->current_replicas, (long long)have);
			goto out;
		}
		json_t *rv = obj_get_path(cur, "metadata.resourceVersion");
		if (rv)
			json_object_set_new(patch, "metadata", json_pack("{s:O}", "resourceVersion",
			    rv));
	}
	if (dry == CLI_DRY_SERVER) {
		char *p = xasprintf("%s?dryRun=All", path);
		free(path);
		path = p;
	}
	/* a client dry run only reads the Scale (it must exist) */
	if (cli_http(dry == CLI_DRY_CLIENT ? "GET" : "PATCH", path, dry == CLI_DRY_CLIENT ?
	    NULL : "application/merge-patch+json", dry == CLI_DRY_CLIENT ? NULL : patch, &r) < 0)
		goto out;
	if (r.status != 200) {
		cli_print_error(&r, NULL);
		goto out;
	}
	printf("%s scaled%s\n", cli_obj_ref(k, name, ref, sizeof ref), cli_dry_said[dry]);
	rc = 0;
out:
	cli_resp_free(&r);
	json_decref(cur);
	json_decref(patch);
	free(path);
	return rc;
}

static const struct kind *
scale_kind(const char *name, size_t len)
{
	char kname[64];
	snprintf(kname, sizeof kname, "%.*s", (int)len, name);
	const struct kind *k = cli_kind(kname);
	if (k == NULL)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(scalable); i++)
		if (strcmp(k->kind, scalable[i]) == 0)
			return k;
	cli_err("cannot scale %s: v6 scales deployments, replica sets and stateful sets",
	    k->plural);
	return NULL;
}

int
cli_scale(struct cli_opts *o)
{
	if (!cli_flag_given(o, "replicas"))
		return cli_err("required flag(s) \"replicas\" not set");
	if (o->replicas < 0)
		return cli_err("The --replicas=COUNT flag is required, and COUNT must be greater "
		    "than or equal to 0");
	if (o->nargs == 0)
		return cli_err("you must specify the type of resource to scale, e.g. 'v6 scale "
		    "deployment/web --replicas 3'");
	int rc = 0;
	if (strchr(o->args[0], '/')) {
		for (size_t i = 0; i < o->nargs; i++) {
			const char *slash = strchr(o->args[i], '/');
			const struct kind *k = slash ? scale_kind(o->args[i],
			    (size_t)(slash - o->args[i])) : NULL;
			if (slash == NULL)
				cli_err("arguments in resource/name form must have a single resource "
				    "and name: %s", o->args[i]);
			rc |= k ? scale_one(o, k, slash + 1) : 1;
		}
		return rc;
	}
	const struct kind *k = scale_kind(o->args[0], strlen(o->args[0]));
	if (k == NULL)
		return 1;
	if (o->nargs == 1)
		return cli_err("resource(s) were provided, but no name was specified");
	for (size_t i = 1; i < o->nargs; i++)
		rc |= scale_one(o, k, o->args[i]);
	return rc;
}
