/* image_api.c — the node's images over the API server, an aggregated group
 * images.v6.dev/v1alpha1 the CLI (`v6 image ...`) talks to:
 *   GET    .../images              ImageList of the complete images
 *   POST   .../images   {"ref"}    pull (policy Always), 201 Image
 *   DELETE .../images?ref=REF      forget REF, sweep unused blobs (409 in use)
 *   POST   .../imports  {"path"}   import a tar on the server's file system
 * Pulls and imports run on the thread pool; the request is answered when
 * they end. Registered by server.c. */
#include "image_int.h"
#include "api.h"
#include "http.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define GROUP "images.v6.dev"
#define GROUP_VERSION GROUP "/v1alpha1"

static json_t *
image_json(const struct img_info *info)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "kind", "Image", "apiVersion",
	    GROUP_VERSION, "ref", info->ref, "digest", info->digest, "imageID",
	    info->image_id, "size", (json_int_t)info->size, "layers",
	    (json_int_t)info->n_layers);
}

static int
code_for(int err)
{
	switch (err) {
	case -EINVAL: return 400;
	case -ENOENT: return 404;
	case -EACCES: return 403;
	case -EPERM: return 422;	/* the image itself is refused (a path out) */
	default: return 502;
	}
}

/* ---- pull --------------------------------------------------------------- */

static void
pull_done(void *arg, int err, const char *message, struct img_info *info)
{
	struct http_req *req = arg;
	if (err < 0)
		api_respond_status(req, code_for(err), message);
	else
		api_respond_json(req, 201, image_json(info));
	img_info_free(info);
}

static void
serve_pull(struct img_store *s, struct http_req *req, const json_t *body)
{
	const char *ref = json_string_value(json_object_get(body, "ref"));
	const json_t *auths = json_object_get(body, "auths");
	struct img_ref r;
	char *msg = NULL;

	if (!ref || img_ref_parse(ref, &r, &msg) < 0) {
		api_respond_status(req, 400, msg ? msg : "body: \"ref\" (an image reference) "
		    "is required");
		free(msg);
		return;
	}
	char *norm = img_ref_string(&r);
	img_ref_free(&r);
	int rc = img_ensure(s, norm, IMG_PULL_ALWAYS, json_is_object(auths) ? auths : NULL, 0,
	    pull_done, req);
	free(norm);
	if (rc < 0)
		api_respond_status(req, 500, "cannot queue the pull");
}

/* ---- import ------------------------------------------------------------- */

struct import {
	struct img_store *s;
	struct http_req *req;
	char *path;
	json_t *refs;
	char *msg;
	int err;
};

static void
import_run(void *arg)
{
	struct import *im = arg;
	im->err = img_import_file(im->s, im->path, &im->refs, &im->msg);
}

static void
import_done(void *arg, bool cancelled)
{
	struct import *im = arg;

	if (cancelled)
		api_respond_status(im->req, 503, "the server is stopping");
	else if (im->err < 0) {
		char *m = xasprintf("cannot import %s: %s", im->path, im->msg ? im->msg :
		    strerror(-im->err));
		api_respond_status(im->req, im->err == -ENOENT ? 404 : 422, m);
		free(m);
	} else
		api_respond_json(im->req, 201, json_pack("{s:s, s:s, s:O}", "kind", "ImageImport",
		    "apiVersion", GROUP_VERSION, "refs", im->refs));
	json_decref(im->refs);
	free(im->msg);
	free(im->path);
	free(im);
}

static void
serve_import(struct img_store *s, struct http_req *req, const json_t *body)
{
	const char *path = json_string_value(json_object_get(body, "path"));
	if (!path || path[0] != '/') {
		api_respond_status(req, 400, "body: \"path\" (an absolute path to an OCI or "
		    "docker archive on the server's machine) is required");
		return;
	}
	struct import *im = xcalloc(1, sizeof *im);
	im->s = s;
	im->req = req;
	im->path = xstrdup(path);
	if (img__queue(s, import_run, import_done, im, NULL) < 0) {
		api_respond_status(req, 500, "cannot queue the import");
		free(im->path);
		free(im);
	}
}

/* ---- list, remove ------------------------------------------------------- */

struct removal {
	struct img_store *s;
	struct http_req *req;
	char *ref, *removed, *msg;
	json_int_t stamp;	/* the image's use stamp when the loop found it unused */
	int err;
};

static void
remove_run(void *arg)
{
	struct removal *r = arg;
	r->err = img__remove_unused(r->s, r->ref, r->stamp, &r->removed, &r->msg);
}

static void
remove_done(void *arg, bool cancelled)
{
	struct removal *r = arg;
	if (cancelled)
		api_respond_status(r->req, 503, "the server is stopping");
	else if (r->err < 0)
		api_respond_status(r->req, r->err == -ENOENT ? 404 : r->err == -EBUSY ? 409 : 500,
		    r->msg);
	else
		api_respond_json(r->req, 200, json_pack("{s:s, s:s, s:{}, s:s, s:{s:s}}", "kind",
		    "Status", "apiVersion", "v1", "metadata", "status", "Success", "details",
		    "name", r->removed));
	free(r->ref);
	free(r->removed);
	free(r->msg);
	free(r);
}

/* Whether a pod uses the image is the agent's answer, on the loop; the
 * removal itself (directory trees) runs on the pool. */
static void
serve_remove(struct img_store *s, struct http_req *req)
{
	char *ref = http_query_get(req->query, "ref");
	struct img_info *info = NULL;
	char *by = NULL;

	if (!ref || !*ref) {
		api_respond_status(req, 400, "query: ref=IMAGE is required");
		free(ref);
		return;
	}
	if (img_lookup(s, ref, &info) == 0 && (by = img__in_use(s, info->image_id)) != NULL) {
		char *m = xasprintf("image \"%s\" is in use by pod %s", info->ref, by);
		api_respond_status(req, 409, m);
		free(m);
		free(ref);
	} else {
		struct removal *r = xcalloc(1, sizeof *r);
		*r = (struct removal){ .s = s, .req = req, .ref = ref,
			.stamp = img__use_stamp(s, ref) };
		if (img__queue(s, remove_run, remove_done, r, NULL) < 0) {
			api_respond_status(req, 500, "cannot queue the removal");
			free(r->ref);
			free(r);
		}
	}
	img_info_free(info);
	free(by);
}

static json_t *
discovery(const char *rest)
{
	return api_group_discovery(rest, GROUP, "v1alpha1", json_pack("[{s:s, s:s, s:s, "
	    "s:b, s:[s, s, s]}, {s:s, s:s, s:s, s:b, s:[s]}]", "name", "images",
	    "singularName", "", "kind", "Image", "namespaced", false, "verbs", "list",
	    "create", "delete", "name", "imports", "singularName", "", "kind",
	    "ImageImport", "namespaced", false, "verbs", "create"));
}

static void
serve(void *arg, struct http_req *req, const char *rest)
{
	struct img_store *s = arg;
	bool get = !strcmp(req->method, "GET"), post = !strcmp(req->method, "POST");
	json_t *o, *body = NULL;

	if (get && (o = discovery(rest)) != NULL) {
		api_respond_json(req, 200, o);
		return;
	}
	bool images = !strcmp(rest, "/v1alpha1/images");
	bool imports = !strcmp(rest, "/v1alpha1/imports");
	if (!images && !imports) {
		api_respond_status(req, 404, "the server could not find the requested resource");
		return;
	}
	if (post && !(body = json_loadb(req->body, req->body_len, 0, NULL))) {
		api_respond_status(req, 400, "the request body is not JSON");
		return;
	}
	if (images && get)
		api_respond_json(req, 200, json_pack("{s:s, s:s, s:o}", "kind", "ImageList",
		    "apiVersion", GROUP_VERSION, "items", img_list(s)));
	else if (images && post)
		serve_pull(s, req, body);
	else if (images && !strcmp(req->method, "DELETE"))
		serve_remove(s, req);
	else if (imports && post)
		serve_import(s, req, body);
	else
		api_respond_status(req, 405, "method not allowed on this resource");
	json_decref(body);
}

void
img_api_register(struct api *api, struct img_store *s)
{
	api_register_group(api, GROUP, serve, s);
	api_group_version(api, GROUP, "v1alpha1");
}
