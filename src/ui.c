/* ui.c — serves the web dashboard's embedded assets (ui.h) under /ui/ on
 * the API port: gzip'ed when the client accepts it, with a strong ETag and
 * 304 on a match, revalidated on every load (Cache-Control: no-cache) so a
 * new binary's assets are never mixed with an old page. server.c registers
 * it after api_start(). */
#include "ui.h"
#include "api.h"
#include "http.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The page only talks to its own origin and runs no inline script. */
#define UI_CSP "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " \
	"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"

const struct ui_asset *
ui_asset_find(const char *path)
{
	for (size_t i = 0; i < ui_nassets; i++)
		if (strcmp(ui_assets[i].path, path) == 0)
			return &ui_assets[i];
	return NULL;
}

/* True when the comma-separated list (Accept-Encoding, If-None-Match)
 * holds token, ignoring spaces; a token with ";q=0" does not count. */
static bool
list_has(const char *list, const char *token)
{
	size_t tl = strlen(token);
	for (const char *p = list; p && *p;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *end = p + strcspn(p, ",");
		size_t n = strcspn(p, ";, \t");
		if (n == tl && strncasecmp(p, token, tl) == 0) {
			const char *q = memchr(p, ';', (size_t)(end - p));
			if (!q || !strstr(q, "q=0") || strstr(q, "q=0."))
				return true;
		}
		p = end;
	}
	return false;
}

static void
serve_asset(void *arg, struct http_req *req)
{
	(void)arg;
	if (strcmp(req->path, "/ui") == 0) {
		http_add_header(req, "Location", "/ui/");
		http_respond(req, 308, "text/plain", "/ui/\n", 5);
		return;
	}
	if (strcmp(req->method, "GET") != 0) {
		api_respond_status(req, 405, "only GET is supported under /ui/");
		return;
	}
	const struct ui_asset *a = ui_asset_find(req->path);
	if (!a) {
		api_respond_status(req, 404, "the dashboard has no such file");
		return;
	}
	http_add_header(req, "ETag", a->etag);
	http_add_header(req, "Cache-Control", "no-cache");
	http_add_header(req, "Vary", "Accept-Encoding");
	http_add_header(req, "X-Content-Type-Options", "nosniff");
	http_add_header(req, "Content-Security-Policy", UI_CSP);
	const char *inm = http_req_header(req, "If-None-Match");
	if (inm && (list_has(inm, a->etag) || strcmp(inm, "*") == 0)) {
		http_respond(req, 304, NULL, "", 0);
		return;
	}
	if (list_has(http_req_header(req, "Accept-Encoding"), "gzip")) {
		http_add_header(req, "Content-Encoding", "gzip");
		http_respond(req, 200, a->content_type, (const char *)a->gz, a->gz_len);
	} else {
		http_respond(req, 200, a->content_type, (const char *)a->data, a->len);
	}
}

void
ui_register(struct api *api)
{
	api_register_path(api, "/ui", serve_asset, NULL);
	api_register_prefix(api, "/ui/", serve_asset, NULL);
}
