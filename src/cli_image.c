/* cli_image.c — `v6 image ls | pull REF | rm REF... | import FILE`: the
 * node's image store through the server's images.v6.dev API (image_api.c),
 * as crictl images / pull / rmi do against a kubelet's runtime. */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMAGES "/apis/images.v6.dev/v1alpha1/images"
#define IMPORTS "/apis/images.v6.dev/v1alpha1/imports"

/* "1.5MB" as crictl prints sizes (decimal units). */
static void
human_size(int64_t n, char *out, size_t len)
{
	static const char *const units[] = { "B", "kB", "MB", "GB", "TB" };
	double v = (double)n;
	size_t u = 0;
	while (v >= 1000 && u + 1 < ARRAY_SIZE(units))
		v /= 1000, u++;
	snprintf(out, len, u ? "%.3g%s" : "%.0f%s", v, units[u]);
}

static int
image_ls(const struct cli_opts *o)
{
	json_t *list, *it;
	size_t i;

	if (cli_get_json(IMAGES, &list) < 0)
		return 1;
	if (o->output && strcmp(o->output, "json") == 0) {
		char *s = json_dumps(list, JSON_INDENT(4));
		printf("%s\n", s);
		free(s);
		json_decref(list);
		return 0;
	}
	if (!o->no_headers)
		printf("%-50s %-16s %-19s %s\n", "IMAGE", "TAG", "DIGEST", "SIZE");
	json_array_foreach(json_object_get(list, "items"), i, it) {
		const char *ref = json_string_value(json_object_get(it, "ref")) ?: "";
		const char *digest = json_string_value(json_object_get(it, "digest")) ?: "";
		char repo[512], size[32];
		const char *tag = "<none>";
		snprintf(repo, sizeof repo, "%s", ref);
		char *at = strchr(repo, '@'), *slash = strrchr(repo, '/');
		if (at)
			*at = '\0';
		char *colon = strrchr(slash ? slash : repo, ':');
		if (colon) {
			*colon = '\0';
			tag = colon + 1;
		}
		human_size(json_integer_value(json_object_get(it, "size")), size, sizeof size);
		printf("%-50s %-16s %-19.19s %s\n", repo, tag,
		    str_has_prefix(digest, "sha256:") ? digest + 7 : digest, size);
	}
	json_decref(list);
	return 0;
}

static int
image_post(const char *path, json_t *body, json_t **out)
{
	struct cli_resp r = { 0 };
	int rc = cli_http("POST", path, NULL, body, &r);
	json_decref(body);
	if (rc < 0)
		return 1;
	if (r.status != 201) {
		cli_print_error(&r, NULL);
		cli_resp_free(&r);
		return 1;
	}
	*out = json_incref(r.body);
	cli_resp_free(&r);
	return 0;
}

static int
image_pull(const struct cli_opts *o)
{
	json_t *img;
	if (o->nargs != 2)
		return cli_err("usage: v6 image pull REF");
	if (image_post(IMAGES, json_pack("{s:s}", "ref", o->args[1]), &img))
		return 1;
	printf("Image is up to date for %s\n",
	    json_string_value(json_object_get(img, "imageID")));
	json_decref(img);
	return 0;
}

static int
image_import(const struct cli_opts *o)
{
	char abs[PATH_MAX];
	json_t *res, *ref;
	size_t i;

	if (o->nargs != 2)
		return cli_err("usage: v6 image import FILE");
	if (!realpath(o->args[1], abs))
		return cli_err("%s: %s", o->args[1], strerror(errno));
	if (image_post(IMPORTS, json_pack("{s:s}", "path", abs), &res))
		return 1;
	json_array_foreach(json_object_get(res, "refs"), i, ref)
		printf("imported %s\n", json_string_value(ref));
	json_decref(res);
	return 0;
}

static int
image_rm(const struct cli_opts *o)
{
	int rc = 0;
	if (o->nargs < 2)
		return cli_err("usage: v6 image rm REF...");
	for (size_t i = 1; i < o->nargs; i++) {
		struct buf q = BUF_INIT;
		struct cli_resp r = { 0 };
		cli_query_add(&q, "ref", o->args[i]);
		char *path = xasprintf("%s?%s", IMAGES, q.data);
		buf_free(&q);
		if (cli_http("DELETE", path, NULL, NULL, &r) < 0)
			rc = 1;
		else if (r.status != 200) {
			cli_print_error(&r, NULL);
			rc = 1;
		} else
			printf("Deleted: %s\n", json_string_value(json_object_get(
			    json_object_get(r.body, "details"), "name")));
		cli_resp_free(&r);
		free(path);
	}
	return rc;
}

static const struct cli_sub subs[] = {
	{ "ls", image_ls }, { "list", image_ls }, { "pull", image_pull },
	{ "rm", image_rm }, { "import", image_import },
};

int
cli_image(struct cli_opts *o)
{
	return cli_run_sub(o, subs, ARRAY_SIZE(subs), "ls, pull, rm or import");
}
