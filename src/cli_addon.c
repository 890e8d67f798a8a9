/* cli_addon.c — `v6 addon ls | enable NAME | disable NAME [--purge]`: the
 * components V6 runs as its own workloads (addon.c on the server), as
 * minikube's and microk8s' addons. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
addon_ls(const struct cli_opts *o)
{
	(void)o;
	json_t *res = NULL, *a;
	size_t i;
	if (cli_get_json("/v6/addons", &res) < 0)
		return 1;
	printf("%-16s %-10s %-10s %s\n", "NAME", "ENABLED", "READY", "DESCRIPTION");
	json_array_foreach(json_object_get(res, "addons"), i, a) {
		size_t j, ready = 0, n = 0;
		json_t *w;
		json_array_foreach(json_object_get(a, "workloads"), j, w) {
			n++;
			ready += json_integer_value(json_object_get(w, "ready")) >=
			    json_integer_value(json_object_get(w, "replicas"));
		}
		char r[32];
		snprintf(r, sizeof r, "%zu/%zu", ready, n);
		printf("%-16s %-10s %-10s %s\n", json_string_value(json_object_get(a, "name")),
		    json_is_true(json_object_get(a, "enabled")) ? "yes" : "no", n ? r : "-",
		    json_string_value(json_object_get(a, "description")));
	}
	json_decref(res);
	return 0;
}

/* --dry-run=client sends no write: it only checks that the server knows
 * the addon (GET /v6/addons). */
static int
addon_known(const char *name)
{
	json_t *res = NULL, *a;
	size_t i;
	int rc = 1;
	if (cli_get_json("/v6/addons", &res) < 0)
		return 1;
	json_array_foreach(json_object_get(res, "addons"), i, a)
		if (!strcmp(json_string_value(json_object_get(a, "name")) ?: "", name))
			rc = 0;
	json_decref(res);
	return rc ? cli_err("unknown addon \"%s\" (see v6 addon ls)", name) : 0;
}

static void
addon_print(const struct cli_opts *o, bool enable, const json_t *body, enum cli_dry dry)
{
	const char *verb = enable ? "configured" : "deleted";
	json_t *list = json_object_get(body, enable ? "applied" : "deleted"), *x;
	size_t i;
	const char *ns = json_string_value(json_object_get(body, "namespace"));
	json_array_foreach(list, i, x)
		printf("%s %s%s\n", json_string_value(x), verb, cli_dry_said[dry]);
	if (dry != CLI_DRY_NONE)
		printf("addon %s %s%s: nothing was changed\n", o->args[1],
		    enable ? "enabled" : "disabled", cli_dry_said[dry]);
	else if (enable)
		printf("addon %s enabled in namespace %s: follow it with\n"
		    "  v6 get pods -n %s -w\n", o->args[1], ns, ns);
	else if (json_is_true(json_object_get(body, "kept_volumes")))
		printf("addon %s disabled; its data volumes are kept (--purge deletes "
		    "them)\n", o->args[1]);
}

static int
addon_change(const struct cli_opts *o, bool enable)
{
	enum cli_dry dry;
	if (o->nargs != 2)
		return cli_err("usage: v6 addon %s NAME", enable ? "enable" : "disable");
	if (cli_dry_run(o, &dry) < 0)
		return 1;
	if (dry == CLI_DRY_CLIENT) {
		if (addon_known(o->args[1]) != 0)
			return 1;
		addon_print(o, enable, NULL, dry);
		return 0;
	}
	bool purge = !enable && o->purge, server = dry == CLI_DRY_SERVER;
	char *path = xasprintf("/v6/addons/%s?purge=%s%s", o->args[1], purge ? "true" : "false",
	    server ? "&dryRun=All" : "");
	struct cli_resp r = { 0 };
	int rc = 0;
	if (cli_http(enable ? "POST" : "DELETE", path, NULL, NULL, &r) < 0) {
		rc = 1;
	} else if (r.status == 404) {
		rc = cli_err("unknown addon \"%s\" (see v6 addon ls)", o->args[1]);
	} else if (r.status != 200) {
		cli_print_error(&r, NULL);
		rc = 1;
	} else {
		addon_print(o, enable, r.body, dry);
	}
	cli_resp_free(&r);
	free(path);
	return rc;
}

static int
addon_enable(const struct cli_opts *o)
{
	return addon_change(o, true);
}

static int
addon_disable(const struct cli_opts *o)
{
	return addon_change(o, false);
}

static const struct cli_sub subs[] = {
	{ "ls", addon_ls }, { "list", addon_ls }, { "enable", addon_enable },
	{ "disable", addon_disable },
};

int
cli_addon(struct cli_opts *o)
{
	return cli_run_sub(o, subs, ARRAY_SIZE(subs), "ls, enable or disable");
}
