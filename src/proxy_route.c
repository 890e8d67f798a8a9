/* proxy_route.c — the proxy's routing decisions, pure and I/O-free: routes
 * compiled from the snapshot's JSON (hostnames, path, header, query and
 * cookie matches, filters, timeouts, weighted backends, sticky cookie),
 * matching a request against them, and choosing a backend and an endpoint
 * (round robin, least request, passive outlier ejection). Called by
 * proxy_engine.c when applying a snapshot and for every request. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy_int.h"

/* ---- compiling --------------------------------------------------------- */

static int
route_err(char **err, const char *route, const char *what)
{
	if (err && *err == NULL)
		*err = xasprintf("route %s: %s", route ? route : "?", what);
	return -EINVAL;
}

static const char *
jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static int
mtype_parse(const char *s, enum px_mtype *out)
{
	static const struct { const char *name; enum px_mtype t; } tab[] = {
		{ "Exact", PX_M_EXACT }, { "Prefix", PX_M_PREFIX },
		{ "PathPrefix", PX_M_PREFIX }, { "RegularExpression", PX_M_REGEX },
	};
	size_t i;

	if (s == NULL) {
		*out = PX_M_EXACT;
		return 0;
	}
	for (i = 0; i < ARRAY_SIZE(tab); i++)
		if (strcmp(tab[i].name, s) == 0) {
			*out = tab[i].t;
			return 0;
		}
	return -EINVAL;
}

static void
kv_clear(struct px_kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(kv[i].name);
		free(kv[i].value);
		if (kv[i].has_re)
			regfree(&kv[i].re);
	}
	free(kv);
}

/* Compiles an array of {name, type, value}; cookies have no type. */
static int
kv_compile(const json_t *arr, struct px_kv **out, size_t *n, const char *rname, char **err)
{
	const json_t *it;
	size_t i;
	const char *name, *value;

	*out = NULL;
	*n = 0;
	if (arr == NULL)
		return 0;
	if (!json_is_array(arr))
		return route_err(err, rname, "matches must be arrays");
	*out = xcalloc(json_array_size(arr) + 1, sizeof(**out));
	json_array_foreach(arr, i, it) {
		struct px_kv *kv = &(*out)[i];
		name = jstr(it, "name");
		value = jstr(it, "value");
		if (name == NULL || value == NULL)
			return route_err(err, rname, "a match needs name and value");
		if (mtype_parse(jstr(it, "type"), &kv->type) < 0)
			return route_err(err, rname, "unknown match type");
		kv->name = xstrdup(name);
		kv->value = xstrdup(value);
		kv->value_len = strlen(value);
		*n = i + 1;
		if (kv->type == PX_M_REGEX) {
			if (regcomp(&kv->re, value, REG_EXTENDED | REG_NOSUB) != 0)
				return route_err(err, rname, "invalid regular expression");
			kv->has_re = true;
		}
	}
	return 0;
}

static int
match_compile(const json_t *j, struct px_match *m, const char *rname, char **err)
{
	const json_t *path = json_object_get(j, "path");
	const char *v;
	int r;

	static const char *const methods[] = { "GET", "HEAD", "POST", "PUT", "DELETE",
		"CONNECT", "OPTIONS", "TRACE", "PATCH" };
	const json_t *meth = json_object_get(j, "method");
	m->method[0] = '\0';
	if (meth) {
		const char *mv = json_string_value(meth);
		for (size_t i = 0; mv && i < ARRAY_SIZE(methods) && !m->method[0]; i++)
			if (strcmp(mv, methods[i]) == 0)
				snprintf(m->method, sizeof m->method, "%s", mv);
		if (!m->method[0])
			return route_err(err, rname, "method must be one of GET, HEAD, POST, "
			    "PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH");
	}
	m->path_type = PX_M_ANY;
	if (path) {
		if (mtype_parse(jstr(path, "type"), &m->path_type) < 0 ||
		    m->path_type == PX_M_REGEX)
			return route_err(err, rname, "path type must be PathPrefix or Exact");
		v = jstr(path, "value");
		if (v == NULL || v[0] != '/')
			return route_err(err, rname, "path value must start with /");
		m->path = xstrdup(v);
		m->path_len = strlen(v);
		/* "/api/" matches like "/api": on element boundaries */
		while (m->path_type == PX_M_PREFIX && m->path_len > 1 &&
		    m->path[m->path_len - 1] == '/')
			m->path[--m->path_len] = '\0';
	}
	if ((r = kv_compile(json_object_get(j, "headers"), &m->headers, &m->nheaders,
	    rname, err)) < 0)
		return r;
	if ((r = kv_compile(json_object_get(j, "queryParams"), &m->query, &m->nquery,
	    rname, err)) < 0)
		return r;
	return kv_compile(json_object_get(j, "cookies"), &m->cookies, &m->ncookies, rname, err);
}

static void
hdrs_compile(const json_t *arr, struct px_hdr **out, size_t *n)
{
	const json_t *it;
	size_t i;

	*n = 0;
	*out = xcalloc(json_array_size(arr) + 1, sizeof(**out));
	json_array_foreach(arr, i, it) {
		if (jstr(it, "name") == NULL || jstr(it, "value") == NULL)
			continue;
		(*out)[*n].name = xstrdup(jstr(it, "name"));
		(*out)[*n].value = xstrdup(jstr(it, "value"));
		(*n)++;
	}
}

static int
filters_compile(const json_t *arr, struct px_route *r, char **err)
{
	const json_t *f, *rm;
	size_t i, k;

	json_array_foreach(arr, i, f) {
		const char *type = jstr(f, "type");
		if (type && (strcmp(type, "RequestRedirect") == 0 ||
		    strcmp(type, "URLRewrite") == 0)) {
			int rc = px_filter_compile(f, r, err);
			if (rc < 0)
				return rc;
			continue;
		}
		if (type == NULL || strcmp(type, "RequestHeaderModifier") != 0)
			continue;	/* other filters are the controller's business */
		if (r->hset || r->hadd || r->hremove)
			return route_err(err, r->name, "one RequestHeaderModifier per route");
		hdrs_compile(json_object_get(f, "set"), &r->hset, &r->nset);
		hdrs_compile(json_object_get(f, "add"), &r->hadd, &r->nadd);
		rm = json_object_get(f, "remove");
		r->hremove = xcalloc(json_array_size(rm) + 1, sizeof(char *));
		for (k = 0; k < json_array_size(rm); k++)
			if (json_string_value(json_array_get(rm, k)))
				r->hremove[r->nremove++] = xstrdup(json_string_value(json_array_get(rm, k)));
	}
	return 0;
}

static int
duration_field(const json_t *o, const char *key, uint64_t *out, const char *rname, char **err)
{
	const char *s = jstr(o, key);
	int64_t ms;

	*out = 0;
	if (s == NULL)
		return 0;
	if (duration_parse(s, &ms) < 0 || ms < 0)
		return route_err(err, rname, "bad duration");
	*out = (uint64_t)ms;
	return 0;
}

static int
backends_compile(const json_t *arr, struct px_table *t, struct px_route *r, char **err)
{
	const json_t *b;
	size_t i;

	if (!json_is_array(arr))
		return route_err(err, r->name, "backends must be an array");
	r->backends = xcalloc(json_array_size(arr) + 1, sizeof(*r->backends));
	json_array_foreach(arr, i, b) {
		const char *cname = jstr(b, "cluster");
		const json_t *w = json_object_get(b, "weight");
		struct px_backend *be = &r->backends[i];

		if (cname == NULL || (be->cluster = px_cluster_find(t, cname)) == NULL)
			return route_err(err, r->name, "backend names an unknown cluster");
		be->weight = w ? (int)json_integer_value(w) : 1;
		if ((w && !json_is_integer(w)) || be->weight < 0 || be->weight > 1000000)
			return route_err(err, r->name, "bad backend weight");
		r->total_weight += be->weight;
		r->nbackends = i + 1;
	}
	return 0;
}

int
px_route_compile(const json_t *j, struct px_table *t, struct px_route *r, char **err)
{
	const json_t *hosts = json_object_get(j, "hostnames"), *arr, *it, *to, *st;
	size_t i;
	int rc;

	if (!json_is_object(j) || jstr(j, "name") == NULL)
		return route_err(err, NULL, "a route needs a name");
	r->name = xstrdup(jstr(j, "name"));
	r->hosts = xcalloc(json_array_size(hosts) + 1, sizeof(char *));
	json_array_foreach(hosts, i, it) {
		if (!json_is_string(it))
			return route_err(err, r->name, "hostnames must be strings");
		r->hosts[r->nhosts++] = xstrdup(json_string_value(it));
	}
	arr = json_object_get(j, "matches");
	r->matches = xcalloc(json_array_size(arr) + 1, sizeof(*r->matches));
	json_array_foreach(arr, i, it) {
		r->nmatches = i + 1;
		if ((rc = match_compile(it, &r->matches[i], r->name, err)) < 0)
			return rc;
	}
	if ((rc = filters_compile(json_object_get(j, "filters"), r, err)) < 0)
		return rc;
	to = json_object_get(j, "timeouts");
	if ((rc = duration_field(to, "request", &r->timeout_ms, r->name, err)) < 0 ||
	    (rc = duration_field(to, "backendRequest", &r->backend_timeout_ms, r->name, err)) < 0)
		return rc;
	if ((st = json_object_get(j, "sticky")) != NULL) {
		if (jstr(st, "cookie") == NULL)
			return route_err(err, r->name, "sticky needs a cookie name");
		r->sticky = xstrdup(jstr(st, "cookie"));
		if ((rc = duration_field(st, "ttl", &r->sticky_ttl_s, r->name, err)) < 0)
			return rc;
		r->sticky_ttl_s /= 1000;
	}
	return backends_compile(json_object_get(j, "backends"), t, r, err);
}

void
px_route_clear(struct px_route *r)
{
	size_t i;

	free(r->name);
	for (i = 0; i < r->nhosts; i++)
		free(r->hosts[i]);
	free(r->hosts);
	for (i = 0; i < r->nmatches; i++) {
		free(r->matches[i].path);
		kv_clear(r->matches[i].headers, r->matches[i].nheaders);
		kv_clear(r->matches[i].query, r->matches[i].nquery);
		kv_clear(r->matches[i].cookies, r->matches[i].ncookies);
	}
	free(r->matches);
	for (i = 0; i < r->nset; i++) {
		free(r->hset[i].name);
		free(r->hset[i].value);
	}
	for (i = 0; i < r->nadd; i++) {
		free(r->hadd[i].name);
		free(r->hadd[i].value);
	}
	free(r->hset);
	free(r->hadd);
	for (i = 0; i < r->nremove; i++)
		free(r->hremove[i]);
	free(r->hremove);
	px_filter_free(r->redirect);
	px_filter_free(r->rewrite);
	free(r->sticky);
	free(r->backends);
	for (i = 0; i < r->nstats; i++)
		px_stat_put(r->stats[i].stat);
	free(r->stats);
	memset(r, 0, sizeof(*r));
}

/* ---- matching ---------------------------------------------------------- */

/* Exact ("shop.example") or wildcard ("*.example": one label or more). */
bool
px_host_matches(const char *pattern, const char *host, size_t host_len)
{
	size_t plen = strlen(pattern);

	if (pattern[0] == '*' && pattern[1] == '.') {
		plen -= 1;	/* ".example" */
		return host_len > plen &&
		    strncasecmp(host + host_len - plen, pattern + 1, plen) == 0;
	}
	return plen == host_len && strncasecmp(pattern, host, host_len) == 0;
}

bool
px_path_matches(enum px_mtype type, const char *value, size_t len, const char *path)
{
	switch (type) {
	case PX_M_ANY:
		return true;
	case PX_M_EXACT:
		return strcmp(value, path) == 0;
	case PX_M_PREFIX:
		if (len == 1)
			return true;	/* "/" */
		return strncmp(value, path, len) == 0 && (path[len] == '\0' || path[len] == '/');
	default:
		return false;
	}
}

static bool
value_matches(const struct px_kv *kv, const char *v)
{
	switch (kv->type) {
	case PX_M_EXACT:
		return strcmp(kv->value, v) == 0;
	case PX_M_PREFIX:
		return strncmp(kv->value, v, kv->value_len) == 0;
	case PX_M_REGEX:
		return regexec(&kv->re, v, 0, NULL, 0) == 0;
	default:
		return false;
	}
}

bool
px_cookie_get(const struct http_req *req, const char *name, char *out, size_t outsz)
{
	size_t nlen = strlen(name), i, n;
	const char *p, *e;

	for (i = 0; i < req->nheaders; i++) {
		if (strcasecmp(req->headers[i].name, "cookie") != 0)
			continue;
		for (p = req->headers[i].value; *p; p = *e ? e + 1 : e) {
			while (*p == ' ' || *p == '\t')
				p++;
			e = p + strcspn(p, ";");
			if ((size_t)(e - p) > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
				n = (size_t)(e - p) - nlen - 1;
				if (n >= outsz)
					n = outsz - 1;
				memcpy(out, p + nlen + 1, n);
				out[n] = '\0';
				return true;
			}
		}
	}
	return false;
}

static bool
match_one(const struct px_match *m, const struct http_req *req)
{
	const char *v;
	char *q, cookie[512];
	size_t i;
	bool ok;

	if (m->method[0] && strcmp(m->method, req->method) != 0)
		return false;
	if (!px_path_matches(m->path_type, m->path, m->path_len, req->path))
		return false;
	for (i = 0; i < m->nheaders; i++)
		if ((v = http_req_header(req, m->headers[i].name)) == NULL ||
		    !value_matches(&m->headers[i], v))
			return false;
	for (i = 0; i < m->nquery; i++) {
		if ((q = http_query_get(req->query, m->query[i].name)) == NULL)
			return false;
		ok = value_matches(&m->query[i], q);
		free(q);
		if (!ok)
			return false;
	}
	for (i = 0; i < m->ncookies; i++)
		if (!px_cookie_get(req, m->cookies[i].name, cookie, sizeof(cookie)) ||
		    !value_matches(&m->cookies[i], cookie))
			return false;
	return true;
}

static bool
host_ok(const struct px_route *r, const struct http_req *req)
{
	const char *host, *colon;
	size_t len, i;

	if (r->nhosts == 0)
		return true;
	if ((host = http_req_header(req, "host")) == NULL)
		return false;
	colon = host[0] == '[' ? strchr(host, ']') : host;
	colon = colon ? strchr(colon, ':') : NULL;
	len = colon ? (size_t)(colon - host) : strlen(host);
	for (i = 0; i < r->nhosts; i++)
		if (px_host_matches(r->hosts[i], host, len))
			return true;
	return false;
}

bool
px_route_matches(const struct px_route *r, const struct http_req *req)
{
	size_t i;

	if (!host_ok(r, req))
		return false;
	if (r->nmatches == 0)
		return true;
	for (i = 0; i < r->nmatches; i++)
		if (match_one(&r->matches[i], req))
			return true;
	return false;
}

struct px_route *
px_route_find(struct px_lspec *ls, const struct http_req *req)
{
	for (size_t i = 0; i < ls->nroutes; i++)
		if (px_route_matches(&ls->routes[i], req))
			return &ls->routes[i];
	return NULL;
}

/* ---- choosing ---------------------------------------------------------- */

uint32_t
px_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

static struct px_cluster *
sticky_backend(struct px_route *r, const struct http_req *req, struct px_endpoint **sticky)
{
	char v[32], *end;
	unsigned long h;
	size_t i, k;

	if (!px_cookie_get(req, r->sticky, v, sizeof(v)))
		return NULL;
	h = strtoul(v, &end, 16);
	if (*end != '\0' || end == v)
		return NULL;
	for (i = 0; i < r->nbackends; i++) {
		struct px_cluster *c = r->backends[i].cluster;
		if (r->backends[i].weight == 0)
			continue;
		for (k = 0; k < c->neps; k++)
			if (c->eps[k]->sticky == (uint32_t)h && c->eps[k]->ejected_until == 0) {
				*sticky = c->eps[k];
				return c;
			}
	}
	return NULL;
}

/* Smooth weighted round robin (as nginx): exact proportions, spread out. */
struct px_cluster *
px_route_backend(struct px_route *r, const struct http_req *req, struct px_endpoint **sticky)
{
	struct px_backend *best = NULL;
	struct px_cluster *c;
	size_t i;

	*sticky = NULL;
	if (r->sticky && (c = sticky_backend(r, req, sticky)) != NULL)
		return c;
	if (r->total_weight == 0)
		return NULL;
	if (r->nbackends == 1)
		return r->backends[0].cluster;
	for (i = 0; i < r->nbackends; i++) {
		r->backends[i].cur += r->backends[i].weight;
		if (best == NULL || r->backends[i].cur > best->cur)
			best = &r->backends[i];
	}
	best->cur -= r->total_weight;
	return best->cluster;
}

static bool
tried_has(struct px_endpoint *const *tried, size_t n, const struct px_endpoint *ep)
{
	for (size_t i = 0; i < n; i++)
		if (tried[i] == ep)
			return true;
	return false;
}

static bool
in_rotation(struct px_endpoint *ep, uint64_t now)
{
	if (ep->ejected_until == 0)
		return true;
	if (now < ep->ejected_until)
		return false;
	ep->ejected_until = 0;	/* back-off over: try it again */
	ep->fails = 0;
	return true;
}

static struct px_endpoint *
pick_pass(struct px_cluster *c, struct px_endpoint *const *tried, size_t ntried,
    uint64_t now, bool any)
{
	struct px_endpoint *best = NULL, *ep;
	size_t i, n = c->neps, start = c->rr++;

	for (i = 0; i < n; i++) {
		ep = c->eps[(start + i) % n];
		if (tried_has(tried, ntried, ep) || (!any && !in_rotation(ep, now)))
			continue;
		if (c->lb == PX_LB_RR)
			return ep;
		if (best == NULL || ep->active < best->active)
			best = ep;
	}
	return best;
}

struct px_endpoint *
px_pick_endpoint(struct px_cluster *c, struct px_endpoint *const *tried, size_t ntried,
    uint64_t now)
{
	struct px_endpoint *ep;

	if (c->neps == 0)
		return NULL;
	if ((ep = pick_pass(c, tried, ntried, now, false)) != NULL)
		return ep;
	return pick_pass(c, tried, ntried, now, true);
}

void
px_outlier_report(struct px_cluster *c, struct px_endpoint *ep, bool fail, uint64_t now)
{
	size_t i, healthy = 0;
	unsigned shift;

	if (!fail) {
		ep->fails = 0;
		ep->ejections = 0;
		return;
	}
	if (++ep->fails < c->outlier_fails || ep->ejected_until > now)
		return;
	for (i = 0; i < c->neps; i++)
		if (c->eps[i] != ep && in_rotation(c->eps[i], now))
			healthy++;
	if (healthy == 0)
		return;		/* never eject the last one */
	shift = ep->ejections < 3 ? ep->ejections : 3;
	ep->ejections++;
	ep->ejected_until = now + ((uint64_t)c->outlier_ms << shift);
	ep->fails = 0;
}
