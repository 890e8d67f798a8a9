/* ui.h — the web dashboard (issue 16): static assets from web/, embedded in
 * the binary at build time (web/embed.py writes build/gen/ui_assets.c) and
 * served by ui.c under /ui/ on the API port. Every read and action of the
 * dashboard is a normal API call with the user's credentials. */
#ifndef V6_UI_H
#define V6_UI_H

#include <stddef.h>

struct api;

/* One embedded file: its bytes as written and gzip'ed (-9, mtime 0), and a
 * strong ETag of its content ("\"sha256-prefix\""). */
struct ui_asset {
	const char *path;		/* "/ui/app.js"; index.html is "/ui/" */
	const char *content_type;
	const unsigned char *data;
	size_t len;
	const unsigned char *gz;
	size_t gz_len;
	const char *etag;
};

/* build/gen/ui_assets.c */
extern const struct ui_asset ui_assets[];
extern const size_t ui_nassets;

/* ui.c */
/* Serves the assets under /ui/ (and redirects /ui to /ui/) on api. */
void ui_register(struct api *api);
/* The asset for a request path, NULL when none. */
const struct ui_asset *ui_asset_find(const char *path);

#endif
