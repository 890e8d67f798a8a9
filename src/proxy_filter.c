/* proxy_filter.c — the HTTPRoute filters that change where a request goes:
 * RequestRedirect (answered here with a 3xx and Location, never forwarded) and
 * URLRewrite (the path and Host the upstream sees). Compiled from the routing
 * snapshot by proxy_route.c; applied by proxy_engine.c and proxy_upstream.c. */
#include "proxy_int.h"

#include <stdlib.h>
#include <string.h>

struct px_rewrite {
	char *scheme;		/* redirect: "http" / "https"; NULL: the request's */
	char *hostname;		/* NULL: unchanged */
	int port;		/* redirect: 0 = derived (Gateway API's rules) */
	int status;		/* redirect: 301, 302 (default), 303, 307, 308 */
	enum { PX_P_KEEP, PX_P_FULL, PX_P_PREFIX } path_type;
	char *path;		/* the replacement */
};

static char *
jdup(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? xstrdup(s) : NULL;
}

int
px_filter_compile(const json_t *f, struct px_route *r, char **err)
{
	const char *type = json_string_value(json_object_get(f, "type"));
	bool redirect = type && strcmp(type, "RequestRedirect") == 0;
	struct px_rewrite **slot = redirect ? &r->redirect : &r->rewrite;
	const json_t *path = json_object_get(f, "path");
	const char *pt = json_string_value(json_object_get(path, "type"));

	if (*slot != NULL) {
		*err = xasprintf("route %s: one %s per route", r->name, type);
		return -EINVAL;
	}
	struct px_rewrite *w = xcalloc(1, sizeof(*w));
	*slot = w;
	w->scheme = redirect ? jdup(f, "scheme") : NULL;
	w->hostname = jdup(f, "hostname");
	w->port = (int)json_integer_value(json_object_get(f, "port"));
	w->status = (int)json_integer_value(json_object_get(f, "statusCode"));
	if (w->status == 0)
		w->status = 302;
	if (pt && strcmp(pt, "ReplaceFullPath") == 0) {
		w->path_type = PX_P_FULL;
		w->path = jdup(path, "replaceFullPath");
	} else if (pt && strcmp(pt, "ReplacePrefixMatch") == 0) {
		w->path_type = PX_P_PREFIX;
		w->path = jdup(path, "replacePrefixMatch");
		if (r->nmatches != 1 || r->matches[0].path_type != PX_M_PREFIX) {
			*err = xasprintf("route %s: ReplacePrefixMatch needs one PathPrefix match",
			    r->name);
			return -EINVAL;
		}
	}
	if (w->path_type != PX_P_KEEP && w->path == NULL) {
		*err = xasprintf("route %s: %s without its path", r->name, type);
		return -EINVAL;
	}
	return 0;
}

void
px_filter_free(struct px_rewrite *w)
{
	if (w == NULL)
		return;
	free(w->scheme);
	free(w->hostname);
	free(w->path);
	free(w);
}

/* The request target as w makes it: the path replaced (whole, or the matched
 * prefix: "/foo" -> "/bar" turns "/foo/x" into "/bar/x", "/" turns it into "/x"),
 * the query kept. Caller frees. */
static char *
target_of(const struct px_route *r, const struct px_rewrite *w, const char *target)
{
	const char *q = strchr(target, '?');
	size_t plen = q ? (size_t)(q - target) : strlen(target);
	struct buf b = BUF_INIT;

	if (w->path_type == PX_P_FULL) {
		buf_puts(&b, w->path);
	} else if (w->path_type == PX_P_PREFIX) {
		const struct px_match *m = &r->matches[0];
		size_t cut = strcmp(m->path, "/") == 0 ? 0 : m->path_len;
		size_t rl = strlen(w->path);
		if (cut > plen)
			cut = plen;
		while (rl > 0 && w->path[rl - 1] == '/')
			rl--;	/* "/bar/" + "/x": one slash */
		buf_append(&b, w->path, rl);
		buf_append(&b, target + cut, plen - cut);
		if (b.len == 0)
			buf_putc(&b, '/');
	} else {
		buf_append(&b, target, plen);
	}
	if (q)
		buf_puts(&b, q);
	return buf_steal(&b);
}

char *
px_filter_target(const struct px_route *r, const char *target)
{
	return r->rewrite && r->rewrite->path_type != PX_P_KEEP ?
	    target_of(r, r->rewrite, target) : NULL;
}

const char *
px_filter_host(const struct px_route *r)
{
	return r->rewrite ? r->rewrite->hostname : NULL;
}

void
px_filter_redirect(const struct px_route *r, int listener_port, bool https,
    struct http_req *req)
{
	const struct px_rewrite *w = r->redirect;
	const char *scheme = w->scheme ? w->scheme : https ? "https" : "http";
	const char *host = http_req_header(req, "Host");
	struct buf loc = BUF_INIT;
	char *path = target_of(r, w, req->target);
	int port = w->port ? w->port : w->scheme ? 0 : listener_port;

	buf_puts(&loc, scheme);
	buf_puts(&loc, "://");
	if (w->hostname) {
		buf_puts(&loc, w->hostname);
	} else if (host) {	/* the request's host without its port */
		const char *colon = strrchr(host, ':'), *bracket = strrchr(host, ']');
		buf_append(&loc, host, colon && (!bracket || colon > bracket) ?
		    (size_t)(colon - host) : strlen(host));
	}
	if (port && !(port == 80 && !strcmp(scheme, "http")) &&
	    !(port == 443 && !strcmp(scheme, "https")))
		buf_printf(&loc, ":%d", port);
	buf_puts(&loc, path);
	char *location = buf_steal(&loc);
	http_add_header(req, "Location", location);
	http_respond(req, w->status, "text/plain; charset=utf-8", "", 0);
	free(location);
	free(path);
}
