/* proxy_engine.c — the data path's top: applies snapshots and deltas
 * atomically (a new table is compiled first; a delta compiles only what it
 * names and the listeners routing to a replaced cluster, sharing the rest),
 * keeps listeners open across tables (removed ones drain), owns the endpoint
 * registry, and routes each HTTP request to proxy_upstream.c. */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "proxy_handoff.h"
#include "proxy_upstream.h"

#define PX_MAX_CONNS	60000

/* ---- small helpers ------------------------------------------------------ */

uint64_t
px_random(struct proxy_engine *e)
{
	/* xorshift128+: cheap, good enough for ids and tie breaks */
	uint64_t s1 = e->rng[0];
	const uint64_t s0 = e->rng[1];

	e->rng[0] = s0;
	s1 ^= s1 << 23;
	e->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
	return e->rng[1] + s0;
}

static int fail_msg(char **err, const char *fmt, ...) V6_PRINTF(2, 3);

static int
fail_msg(char **err, const char *fmt, ...)
{
	va_list ap;

	if (err && *err == NULL) {
		va_start(ap, fmt);
		*err = xvasprintf(fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static const char *
jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static int
parse_addr(const char *host, int port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (host == NULL || port <= 0 || port > 65535)
		return -EINVAL;
	if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
		return 0;
	if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
		return 0;
	return -EINVAL;
}

/* ---- endpoint registry -------------------------------------------------- */

static struct px_endpoint **
ep_slot(struct proxy_engine *e, const char *key)
{
	return &e->eps[px_hash(key, strlen(key)) & (ARRAY_SIZE(e->eps) - 1)];
}

static struct px_endpoint *
ep_get(struct proxy_engine *e, const char *key, const struct sockaddr_storage *sa)
{
	struct px_endpoint **slot = ep_slot(e, key), *ep;

	for (ep = *slot; ep; ep = ep->hnext)
		if (strcmp(ep->key, key) == 0)
			return ep;
	ep = xcalloc(1, sizeof(*ep));
	ep->key = xstrdup(key);
	ep->sa = *sa;
	ep->pod = xstrdup("");
	ep->revision = xstrdup("");
	ep->sticky = px_hash(key, strlen(key));
	ep->removed = true;
	ep->hnext = *slot;
	*slot = ep;
	e->neps++;
	return ep;
}

void
px_endpoint_unref(struct proxy_engine *e, struct px_endpoint *ep)
{
	struct px_endpoint **pp;

	BUG_ON(ep->refs == 0);
	if (--ep->refs > 0)
		return;
	for (pp = ep_slot(e, ep->key); *pp != ep; pp = &(*pp)->hnext)
		;
	*pp = ep->hnext;
	e->neps--;
	free(ep->key);
	free(ep->pod);
	free(ep->revision);
	free(ep);
	px_engine_poke(e);
}

/* ---- tables ------------------------------------------------------------- */

/* Endpoint labels wait in the cluster until the table is committed. */
struct ep_label {
	const char *pod;
	const char *revision;
};

void
px_cluster_unref(struct proxy_engine *e, struct px_cluster *c)
{
	if (c == NULL || --c->refs > 0)
		return;
	BUG_ON(c->nusers != 0);
	for (size_t k = 0; k < c->neps; k++)
		px_endpoint_unref(e, c->eps[k]);
	free(c->eps);
	free(c->name);
	free(c->service);
	free(c->labels);
	free(c->users);
	free(c);
}

/* ls routes to c: a reference, and ls among c's users. */
static void
cluster_use(struct px_cluster *c, struct px_lspec *ls)
{
	c->refs++;
	if (c->nusers == c->users_cap) {
		c->users_cap = c->users_cap ? 2 * c->users_cap : 2;
		c->users = xrealloc(c->users, c->users_cap * sizeof(*c->users));
	}
	c->users[c->nusers++] = ls;
}

static void
cluster_unuse(struct proxy_engine *e, struct px_cluster *c, struct px_lspec *ls)
{
	for (size_t i = 0; i < c->nusers; i++)
		if (c->users[i] == ls) {
			c->users[i] = c->users[--c->nusers];
			break;
		}
	px_cluster_unref(e, c);
}

/* Calls fn(e, cluster, ls) for every cluster reference of ls: each route
 * backend, and a TCP listener's cluster. */
static void
lspec_clusters(struct proxy_engine *e, struct px_lspec *ls,
    void (*fn)(struct proxy_engine *, struct px_cluster *, struct px_lspec *))
{
	for (size_t i = 0; i < ls->nroutes; i++)
		for (size_t k = 0; k < ls->routes[i].nbackends; k++)
			fn(e, ls->routes[i].backends[k].cluster, ls);
	if (ls->cluster)
		fn(e, ls->cluster, ls);
}

static void
lspec_use(struct proxy_engine *e, struct px_cluster *c, struct px_lspec *ls)
{
	(void)e;
	cluster_use(c, ls);
}

static void
lspec_unref(struct proxy_engine *e, struct px_lspec *ls)
{
	if (ls == NULL || --ls->refs > 0)
		return;
	if (ls->holds)
		lspec_clusters(e, ls, cluster_unuse);
	px_tls_put(e, ls->tls);
	for (size_t k = 0; k < ls->nroutes; k++)
		px_route_clear(&ls->routes[k]);
	free(ls->routes);
	free(ls->name);
	free(ls->address);
	json_decref(ls->src);
	free(ls);
}

static void
table_free(struct proxy_engine *e, struct px_table *t)
{
	size_t i;

	for (i = 0; i < t->nlisteners; i++)
		lspec_unref(e, t->listeners[i]);
	free(t->listeners);
	for (i = 0; i < t->nclusters; i++)
		px_cluster_unref(e, t->clusters[i]);
	free(t->clusters);
	free(t);
}

void
px_table_unref(struct proxy_engine *e, struct px_table *t)
{
	if (t && --t->refs == 0)
		table_free(e, t);
}

static int
uint_field(const json_t *o, const char *key, unsigned def, unsigned *out)
{
	const json_t *v = json_object_get(o, key);

	*out = def;
	if (v == NULL)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > 86400000)
		return -EINVAL;
	*out = (unsigned)json_integer_value(v);
	return 0;
}

static int
cluster_build(struct proxy_engine *e, const char *name, const json_t *j,
    struct px_cluster *c, char **err)
{
	const json_t *eps = json_object_get(j, "endpoints"), *it;
	const char *lb = jstr(j, "lb");
	struct sockaddr_storage ss;
	char key[INET6_ADDRSTRLEN + 16];
	size_t i;
	int port;

	c->name = xstrdup(name);
	if (!json_is_object(j))
		return fail_msg(err, "cluster %s: not an object", name);
	c->service = xstrdup(jstr(j, "service") ? jstr(j, "service") : "");
	if (lb == NULL || strcmp(lb, "round_robin") == 0)
		c->lb = PX_LB_RR;
	else if (strcmp(lb, "least_request") == 0)
		c->lb = PX_LB_LEAST;
	else
		return fail_msg(err, "cluster %s: unknown lb", name);
	if (uint_field(j, "connect_timeout_ms", 1000, &c->connect_timeout_ms) < 0 ||
	    uint_field(j, "hold_ms", 0, &c->hold_ms) < 0 ||
	    uint_field(j, "idle_timeout_ms", 60000, &c->idle_timeout_ms) < 0 ||
	    uint_field(j, "outlier_consecutive_failures", PX_OUTLIER_FAILS,
	    &c->outlier_fails) < 0 ||
	    uint_field(j, "outlier_ejection_ms", PX_OUTLIER_MS, &c->outlier_ms) < 0)
		return fail_msg(err, "cluster %s: bad timeout or outlier setting", name);
	c->trace_ratio = -1;
	if ((it = json_object_get(j, "trace_sample_ratio")) != NULL) {
		c->trace_ratio = json_number_value(it);
		if (!json_is_number(it) || !(c->trace_ratio >= 0 && c->trace_ratio <= 1))
			return fail_msg(err, "cluster %s: trace_sample_ratio must be 0..1", name);
	}
	if (eps && !json_is_array(eps))
		return fail_msg(err, "cluster %s: endpoints must be an array", name);
	c->eps = xcalloc(json_array_size(eps) + 1, sizeof(*c->eps));
	c->labels = xcalloc(json_array_size(eps) + 1, sizeof(*c->labels));
	json_array_foreach(eps, i, it) {
		port = (int)json_integer_value(json_object_get(it, "port"));
		if (parse_addr(jstr(it, "address"), port, &ss) < 0)
			return fail_msg(err, "cluster %s: bad endpoint address or port", name);
		snprintf(key, sizeof(key), strchr(jstr(it, "address"), ':') ? "[%s]:%d" : "%s:%d",
		    jstr(it, "address"), port);
		c->eps[c->neps] = ep_get(e, key, &ss);
		c->eps[c->neps]->refs++;
		c->labels[c->neps].pod = jstr(it, "pod");
		c->labels[c->neps].revision = jstr(it, "revision");
		c->neps++;
	}
	return 0;
}

/* A new cluster compiled from j (borrowed until the table commits: the
 * endpoint labels point into it), or NULL with *err. */
static struct px_cluster *
cluster_compile(struct proxy_engine *e, const char *name, const json_t *j, char **err)
{
	struct px_cluster *c = xcalloc(1, sizeof(*c));

	c->refs = 1;
	e->ncluster_compiles++;
	if (cluster_build(e, name, j, c, err) < 0) {
		px_cluster_unref(e, c);
		return NULL;
	}
	return c;
}

static int
cmp_cluster_name(const void *key, const void *c)
{
	return strcmp(key, (*(struct px_cluster *const *)c)->name);
}

/* The table's clusters and listeners are sorted by name: lookups bisect,
 * so that compiling a table stays linear in its size. */
struct px_cluster *
px_cluster_find(struct px_table *t, const char *name)
{
	struct px_cluster **c;

	if (name == NULL || t->nclusters == 0)
		return NULL;
	c = bsearch(name, t->clusters, t->nclusters, sizeof(*t->clusters), cmp_cluster_name);
	return c ? *c : NULL;
}

static int
lspec_build(const json_t *j, struct px_table *t, struct px_lspec *ls, char **err)
{
	const char *proto = jstr(j, "protocol"), *name = jstr(j, "name");
	const json_t *routes = json_object_get(j, "routes"), *it;
	struct sockaddr_storage ss;
	size_t i;
	int r;

	if (name == NULL)
		return fail_msg(err, "listener without a name");
	ls->name = xstrdup(name);
	ls->address = xstrdup(jstr(j, "address") ? jstr(j, "address") : "0.0.0.0");
	ls->port = (int)json_integer_value(json_object_get(j, "port"));
	if (parse_addr(ls->address, ls->port, &ss) < 0)
		return fail_msg(err, "listener %s: bad address or port", name);
	if (proto == NULL || strcmp(proto, "HTTP") == 0 || strcmp(proto, "HTTPS") == 0)
		ls->proto = PX_HTTP;
	else if (strcmp(proto, "TCP") == 0)
		ls->proto = PX_TCP;
	else
		return fail_msg(err, "listener %s: protocol must be HTTP, HTTPS or TCP", name);
	ls->https = proto && strcmp(proto, "HTTPS") == 0;
	if (ls->proto == PX_TCP) {
		if ((ls->cluster = px_cluster_find(t, jstr(j, "cluster"))) == NULL)
			return fail_msg(err, "listener %s: unknown cluster", name);
		return 0;
	}
	if (routes && !json_is_array(routes))
		return fail_msg(err, "listener %s: routes must be an array", name);
	ls->routes = xcalloc(json_array_size(routes) + 1, sizeof(*ls->routes));
	json_array_foreach(routes, i, it) {
		ls->nroutes = i + 1;
		if ((r = px_route_compile(it, t, &ls->routes[i], err)) < 0)
			return r;
	}
	return 0;
}

/* A new listener spec compiled from j against t's clusters (each of them
 * it routes to referenced), or NULL with *err. */
static struct px_lspec *
lspec_compile(struct proxy_engine *e, const json_t *j, struct px_table *t, char **err)
{
	struct px_lspec *ls = xcalloc(1, sizeof(*ls));
	char *terr = NULL;

	ls->refs = 1;
	ls->src = json_incref((json_t *)j);
	e->nlistener_compiles++;
	if (lspec_build(j, t, ls, err) < 0 || (ls->https &&
	    (ls->tls = px_tls_get(e, json_object_get(j, "tls"), &terr)) == NULL)) {
		if (terr)
			fail_msg(err, "listener %s: %s", ls->name, terr);
		free(terr);
		lspec_unref(e, ls);
		return NULL;
	}
	lspec_clusters(e, ls, lspec_use);
	ls->holds = true;
	return ls;
}

static int
cmp_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int
cmp_listener_json(const void *a, const void *b)
{
	const char *x = jstr(*(json_t *const *)a, "name"), *y = jstr(*(json_t *const *)b, "name");
	return x && y ? strcmp(x, y) : (x != NULL) - (y != NULL);
}

/* What an apply changes: clusters and listener specs new in the table
 * (their endpoints enter rotation, their listeners open) and those of the
 * previous table it no longer has. Arrays borrowed from the tables when
 * !owned. */
struct table_diff {
	struct px_cluster **cadded, **cdropped;
	size_t ncadded, ncdropped;
	struct px_lspec **ladded, **ldropped;
	size_t nladded, nldropped;
	bool owned;
};

static void
diff_free(struct table_diff *d)
{
	if (d->owned) {
		free(d->cadded);
		free(d->cdropped);
		free(d->ladded);
		free(d->ldropped);
	}
	memset(d, 0, sizeof(*d));
}

/* Compiles a whole snapshot into a new table without touching the running
 * one. Clusters and listeners are compiled in name order (px_cluster_find,
 * lspec_find bisect). */
static int
table_build(struct proxy_engine *e, const json_t *snap, struct px_table **out, char **err)
{
	const json_t *clusters = json_object_get(snap, "clusters");
	const json_t *listeners = json_object_get(snap, "listeners"), *v;
	struct px_table *t = xcalloc(1, sizeof(*t));
	const char **names = NULL, *name;
	struct px_lspec *ls;
	json_t **lj = NULL, *it;
	size_t i, n = 0;

	t->refs = 1;
	if (!json_is_object(snap)) {
		fail_msg(err, "snapshot must be a JSON object");
		goto fail;
	}
	v = json_object_get(snap, "version");
	if (v && !json_is_integer(v)) {
		fail_msg(err, "version must be an integer");
		goto fail;
	}
	t->version = v ? json_integer_value(v) : 0;
	if ((clusters && !json_is_object(clusters)) || (listeners && !json_is_array(listeners))) {
		fail_msg(err, "clusters must be an object and listeners an array");
		goto fail;
	}
	names = xcalloc(json_object_size(clusters) + 1, sizeof(*names));
	json_object_foreach((json_t *)clusters, name, it)
		names[n++] = name;
	qsort(names, n, sizeof(*names), cmp_key);
	t->clusters = xcalloc(n + 1, sizeof(*t->clusters));
	for (i = 0; i < n; i++) {
		t->clusters[t->nclusters] = cluster_compile(e, names[i],
		    json_object_get(clusters, names[i]), err);
		if (t->clusters[t->nclusters] == NULL)
			goto fail;
		t->nclusters++;
	}
	n = json_array_size(listeners);
	lj = xcalloc(n + 1, sizeof(*lj));
	json_array_foreach(listeners, i, it)
		lj[i] = it;
	qsort(lj, n, sizeof(*lj), cmp_listener_json);
	t->listeners = xcalloc(n + 1, sizeof(*t->listeners));
	for (i = 0; i < n; i++) {
		if ((ls = lspec_compile(e, lj[i], t, err)) == NULL)
			goto fail;
		t->listeners[t->nlisteners++] = ls;
		if (i > 0 && strcmp(t->listeners[i - 1]->name, ls->name) == 0) {
			fail_msg(err, "listener %s: duplicate name", ls->name);
			goto fail;
		}
	}
	free(names);
	free(lj);
	*out = t;
	return 0;
fail:
	free(names);
	free(lj);
	table_free(e, t);
	return -EINVAL;
}

/* One changed name of a delta: its new definition, or NULL / JSON null
 * when it is removed. */
struct change {
	const char *name;
	const json_t *v;
};

static int
cmp_change(const void *a, const void *b)
{
	return strcmp(((const struct change *)a)->name, ((const struct change *)b)->name);
}

/* The members of obj (NULL: none) as changes, with room for extra more. */
static struct change *
changes_of(const json_t *obj, size_t extra, size_t *n)
{
	struct change *ch = xcalloc(json_object_size(obj) + extra + 1, sizeof(*ch));
	const char *name;
	json_t *v;

	*n = 0;
	json_object_foreach((json_t *)obj, name, v) {
		ch[*n].name = name;
		ch[*n].v = v;
		(*n)++;
	}
	return ch;
}

/* Sorts ch and drops repeated names (the first of each stays). */
static size_t
changes_sort(struct change *ch, size_t n)
{
	size_t i, k = 0;

	qsort(ch, n, sizeof(*ch), cmp_change);
	for (i = 0; i < n; i++)
		if (k == 0 || strcmp(ch[k - 1].name, ch[i].name) != 0)
			ch[k++] = ch[i];
	return k;
}

/* A delta being applied: the table before, the one being built. */
struct derive {
	struct proxy_engine *e;
	const struct px_table *old;
	struct px_table *t;
	struct table_diff *d;
	char **err;
};

/* Walks nold sorted old entries (name_at(old, i)) and the sorted changes
 * ch together in name order, calling step(dv, i, c): (i, NULL) for an old
 * entry no change names, (i, c) for one c replaces or removes, (-1, c)
 * for a change of a new name. Returns 0 or the first step's failure. */
static int
merge_walk(struct derive *dv, size_t nold, const char *(*name_at)(const struct px_table *, size_t),
    const struct change *ch, size_t nch,
    int (*step)(struct derive *, ssize_t, const struct change *))
{
	size_t i = 0, k = 0;
	int o, r;

	while (i < nold || k < nch) {
		o = i == nold ? 1 : k == nch ? -1 : strcmp(name_at(dv->old, i), ch[k].name);
		if (o < 0)
			r = step(dv, (ssize_t)i++, NULL);
		else if (o == 0)
			r = step(dv, (ssize_t)i++, &ch[k++]);
		else
			r = step(dv, -1, &ch[k++]);
		if (r < 0)
			return r;
	}
	return 0;
}

static bool
change_removes(const struct change *c)
{
	return c->v == NULL || json_is_null(c->v);
}

static const char *
cluster_name_at(const struct px_table *t, size_t i)
{
	return t->clusters[i]->name;
}

static int
cluster_step(struct derive *dv, ssize_t i, const struct change *c)
{
	struct px_table *t = dv->t;
	struct table_diff *d = dv->d;
	struct px_cluster *nc;

	if (c == NULL) {
		t->clusters[t->nclusters++] = dv->old->clusters[i];
		dv->old->clusters[i]->refs++;
		return 0;
	}
	if (i >= 0)
		d->cdropped[d->ncdropped++] = dv->old->clusters[i];
	if (change_removes(c))
		return 0;
	if ((nc = cluster_compile(dv->e, c->name, c->v, dv->err)) == NULL)
		return -EINVAL;
	t->clusters[t->nclusters++] = nc;
	d->cadded[d->ncadded++] = nc;
	return 0;
}

static const char *
lspec_name_at(const struct px_table *t, size_t i)
{
	return t->listeners[i]->name;
}

static int
lspec_step(struct derive *dv, ssize_t i, const struct change *c)
{
	struct px_table *t = dv->t;
	struct table_diff *d = dv->d;
	struct px_lspec *ls;

	if (c == NULL) {
		t->listeners[t->nlisteners++] = dv->old->listeners[i];
		dv->old->listeners[i]->refs++;
		return 0;
	}
	if (i >= 0)
		d->ldropped[d->nldropped++] = dv->old->listeners[i];
	if (change_removes(c))
		return 0;
	if (!json_is_object(c->v) || jstr(c->v, "name") == NULL ||
	    strcmp(jstr(c->v, "name"), c->name) != 0)
		return fail_msg(dv->err, "listener %s: not an object of that name", c->name);
	if ((ls = lspec_compile(dv->e, c->v, t, dv->err)) == NULL)
		return -EINVAL;
	t->listeners[t->nlisteners++] = ls;
	d->ladded[d->nladded++] = ls;
	return 0;
}

/* The table after applying a delta (listeners, clusters: name -> value or
 * null) to old (NULL: empty), and what changed. Listener specs of old that
 * route to a replaced or removed cluster are compiled again from their
 * definitions; everything else is shared with old. */
static int
table_derive(struct proxy_engine *e, const struct px_table *old, int64_t version,
    const json_t *listeners, const json_t *clusters, struct px_table **out,
    struct table_diff *d, char **err)
{
	static const struct px_table empty;
	struct derive dv = { e, old ? old : &empty, NULL, d, err };
	struct px_table *t;
	struct change *cch, *lch = NULL;
	size_t i, k, ncch, nlch, extra = 0;
	int r;

	if ((listeners && !json_is_object(listeners)) || (clusters && !json_is_object(clusters)))
		return fail_msg(err, "a delta's listeners and clusters must be objects");
	old = dv.old;
	dv.t = t = xcalloc(1, sizeof(*t));
	t->refs = 1;
	t->version = version;
	d->owned = true;
	cch = changes_of(clusters, 0, &ncch);
	ncch = changes_sort(cch, ncch);
	t->clusters = xcalloc(old->nclusters + ncch + 1, sizeof(*t->clusters));
	d->cadded = xcalloc(ncch + 1, sizeof(*d->cadded));
	d->cdropped = xcalloc(ncch + 1, sizeof(*d->cdropped));
	if ((r = merge_walk(&dv, old->nclusters, cluster_name_at, cch, ncch, cluster_step)) < 0)
		goto out;
	for (i = 0; i < d->ncdropped; i++)
		extra += d->cdropped[i]->nusers;
	lch = changes_of(listeners, extra, &nlch);
	for (i = 0; i < d->ncdropped; i++)
		for (k = 0; k < d->cdropped[i]->nusers; k++) {
			struct px_lspec *u = d->cdropped[i]->users[k];
			if (!u->stale && json_object_get(listeners, u->name) == NULL) {
				lch[nlch].name = u->name;
				lch[nlch++].v = u->src;
			}
		}
	nlch = changes_sort(lch, nlch);
	t->listeners = xcalloc(old->nlisteners + nlch + 1, sizeof(*t->listeners));
	d->ladded = xcalloc(nlch + 1, sizeof(*d->ladded));
	d->ldropped = xcalloc(nlch + 1, sizeof(*d->ldropped));
	r = merge_walk(&dv, old->nlisteners, lspec_name_at, lch, nlch, lspec_step);
out:
	free(cch);
	free(lch);
	if (r < 0) {
		table_free(e, t);
		diff_free(d);
		return r;
	}
	*out = t;
	return 0;
}

/* ---- listeners ---------------------------------------------------------- */

static void on_http_request(struct http_req *req, void *arg);

/* The inherited socket for (proto, address, port), taken out of the list;
 * -1 when there is none. */
static int
inherited_take(struct proxy_engine *e, enum px_proto proto, const char *address, int port)
{
	struct px_inherited **pp, *in;
	int fd;

	for (pp = &e->inherited; (in = *pp) != NULL; pp = &in->next)
		if (in->proto == proto && in->port == port && strcmp(in->address, address) == 0)
			break;
	if (in == NULL)
		return -1;
	*pp = in->next;
	fd = in->fd;
	free(in->address);
	free(in);
	return fd;
}

/* Opens l's socket: the one a replaced proxy handed over for the same
 * address when there is one (no moment without a listener), else a new one. */
static int
listener_open(struct px_listener *l)
{
	struct http_config cfg;
	int fd = inherited_take(l->e, l->proto, l->address, l->port);

	if (l->proto == PX_TCP)
		return px_tcp_listen(l, fd);
	memset(&cfg, 0, sizeof(cfg));
	cfg.handler = on_http_request;
	cfg.handler_arg = l;
	cfg.stream_body = true;
	cfg.max_connections = PX_MAX_CONNS;
	cfg.tls_ctx = l->tls_ctx = px_tls_ctx(l->spec->tls);
	if (fd < 0)
		return http_server_start(l->e->loop, l->address, l->port, &cfg, &l->http);
	return http_server_open(l->e->loop, fd, &cfg, &l->http);
}

static void
listener_set_spec(struct px_listener *l, struct px_lspec *ls)
{
	if (l->spec && l->spec->listener == l)
		l->spec->listener = NULL;
	l->spec = ls;
	ls->listener = l;
	/* certificates changed (or HTTP <-> HTTPS): new handshakes take the new
	 * context, open connections keep theirs */
	if (l->http && l->tls_ctx != px_tls_ctx(ls->tls))
		http_server_set_tls(l->http, l->tls_ctx = px_tls_ctx(ls->tls));
}

static void
listener_free(struct px_listener *l)
{
	struct proxy_engine *e = l->e;
	struct px_listener **pp;

	for (pp = &e->listeners; *pp != l; pp = &(*pp)->next)
		;
	*pp = l->next;
	if (l->http)
		http_server_stop(l->http);
	px_tcp_unlisten(l);
	if (l->spec && l->spec->listener == l)
		l->spec->listener = NULL;
	px_table_unref(e, l->table);
	free(l->name);
	free(l->address);
	free(l);
}

/* Stops accepting; the listener is freed (its idle keep-alive connections
 * closed) by the reaper once its in-flight requests are over. Its spec
 * stays valid through a reference on t, a table holding it. */
static void
listener_remove(struct px_listener *l, struct px_table *t)
{
	if (l->removed)
		return;
	l->removed = true;
	if (l->spec && l->spec->listener == l)
		l->spec->listener = NULL;
	if (t && l->table == NULL) {
		l->table = t;
		t->refs++;
	}
	if (l->http)
		http_server_unlisten(l->http);
	px_tcp_unlisten(l);
	px_engine_poke(l->e);
}

void
px_listener_done(struct px_listener *l)
{
	struct proxy_engine *e = l->e;

	BUG_ON(l->inflight == 0 || e->ninflight == 0);
	l->inflight--;
	e->ninflight--;
	if ((l->removed && l->inflight == 0) || (e->draining && e->ninflight == 0))
		px_engine_poke(e);
}

static bool
lspec_same(const struct px_listener *l, const struct px_lspec *ls)
{
	return l->proto == ls->proto && l->port == ls->port &&
	    strcmp(l->address, ls->address) == 0;
}

static int
cmp_lspec_name(const void *key, const void *ls)
{
	return strcmp(key, (*(struct px_lspec *const *)ls)->name);
}

static struct px_lspec *
lspec_find(struct px_table *t, const char *name)
{
	struct px_lspec **ls;

	if (t->nlisteners == 0)
		return NULL;
	ls = bsearch(name, t->listeners, t->nlisteners, sizeof(*t->listeners), cmp_lspec_name);
	return ls ? *ls : NULL;
}

/* Moves the listeners to table t (old: the current one): those on a spec
 * d dropped take t's spec of the same name while their protocol, address
 * and port stay, else drain; d's new specs no listener took open new ones
 * (every spec of t without a listener when one could not open before:
 * binding is retried on each apply). Listeners on unchanged specs are not
 * visited. Bind failures are reported in *err. */
static void
listeners_diff(struct proxy_engine *e, struct px_table *old, struct px_table *t,
    const struct table_diff *d, char **err)
{
	struct px_lspec *const *open = d->ladded, *ls;
	size_t i, nopen = d->nladded;
	struct px_listener *l;
	int r;

	for (i = 0; i < d->nldropped; i++) {
		if ((l = d->ldropped[i]->listener) == NULL)
			continue;
		ls = lspec_find(t, l->name);
		if (ls && ls->listener == NULL && lspec_same(l, ls))
			listener_set_spec(l, ls);
		else
			listener_remove(l, old);
	}
	if (e->unbound) {
		open = t->listeners;
		nopen = t->nlisteners;
	}
	e->unbound = false;
	for (i = 0; i < nopen; i++) {
		ls = open[i];
		if (ls->listener)
			continue;
		l = xcalloc(1, sizeof(*l));
		l->e = e;
		l->name = xstrdup(ls->name);
		l->address = xstrdup(ls->address);
		l->port = ls->port;
		l->proto = ls->proto;
		listener_set_spec(l, ls);
		l->next = e->listeners;
		e->listeners = l;
		if ((r = listener_open(l)) < 0) {
			log_warn("proxy", "listener %s on %s:%d: %s", l->name, l->address, l->port,
			    uv_strerror(r));
			if (err && *err == NULL)
				*err = xasprintf("listener %s on %s:%d: %s", l->name, l->address,
				    l->port, uv_strerror(r));
			listener_remove(l, t);
			e->unbound = true;
		}
	}
}

/* ---- requests ------------------------------------------------------------- */

static void
on_http_request(struct http_req *req, void *arg)
{
	struct px_listener *l = arg;
	struct proxy_engine *e = l->e;
	struct px_route *route;

	if (l->spec == NULL || (route = px_route_find(l->spec, req)) == NULL) {
		if (e->misc == NULL)
			e->misc = px_stat_get(e, "", "", "");
		px_answer_local(e, e->misc, req, 404, "no route\n");
		return;
	}
	if (route->redirect) {		/* RequestRedirect: no upstream involved */
		px_filter_redirect(route, l->port, l->spec->https, req);
		return;
	}
	if (px_hold_maybe(e, l, route, req))
		return;
	px_forward(e, l, l->table ? l->table : e->table, route, req);
}

/* ---- seamless restart: the engine's side (proxy_handoff.h) ---------------- */

static const char *const proto_names[] = { [PX_HTTP] = "HTTP", [PX_TCP] = "TCP" };

void
proxy_engine_listen_fds(struct proxy_engine *e, proxy_listen_fn fn, void *arg)
{
	struct px_listener *l;
	uv_os_fd_t fd;

	for (l = e->listeners; l; l = l->next) {
		if (l->removed)
			continue;
		if (l->http)
			fd = http_server_fd(l->http);
		else if (l->tcp == NULL || uv_fileno((uv_handle_t *)l->tcp, &fd) < 0)
			fd = -1;
		if (fd >= 0)
			fn(arg, proto_names[l->proto], l->address, l->port, fd);
	}
}

bool
proxy_engine_inherit(struct proxy_engine *e, const char *proto, const char *address, int port,
    int fd)
{
	struct px_inherited *in;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(proto_names); i++)
		if (strcmp(proto, proto_names[i]) == 0)
			break;
	if (i == ARRAY_SIZE(proto_names))
		return false;
	in = xcalloc(1, sizeof(*in));
	in->proto = (enum px_proto)i;
	in->address = xstrdup(address);
	in->port = port;
	in->fd = fd;
	in->next = e->inherited;
	e->inherited = in;
	return true;
}

void
proxy_engine_inherit_end(struct proxy_engine *e)
{
	struct px_inherited *in;

	while ((in = e->inherited) != NULL) {
		e->inherited = in->next;
		log_info("proxy", "inherited socket %s %s:%d has no listener any more",
		    proto_names[in->proto], in->address, in->port);
		close(in->fd);
		free(in->address);
		free(in);
	}
}

/* ---- the reaper ---------------------------------------------------------- */

static void
on_reaper_closed(uv_handle_t *h)
{
	struct proxy_engine *e = h->data;

	px_metrics_free(e);
	px_upstream_free_cache(e);
	free(e);
}

/* Client connections still open on a draining HTTP listener. */
static bool
http_conns_left(const struct proxy_engine *e)
{
	for (const struct px_listener *l = e->listeners; l; l = l->next)
		if (l->http && http_server_connections(l->http) > 0)
			return true;
	return false;
}

static void
on_listener_drained(void *arg)
{
	px_engine_poke(arg);
}

static void
on_reaper(uv_timer_t *t)
{
	struct proxy_engine *e = t->data;
	struct px_listener *l, *next;
	void (*cb)(void *);

	for (l = e->listeners; l; l = next) {
		next = l->next;
		if (l->removed && l->inflight == 0)
			listener_free(l);
	}
	if (e->draining && e->ninflight == 0 && e->drain_cb && !http_conns_left(e)) {
		cb = e->drain_cb;
		e->drain_cb = NULL;
		cb(e->drain_arg);
	}
	if (e->closing && e->listeners == NULL && e->neps == 0 && e->nsplices == 0 &&
	    !uv_is_closing((uv_handle_t *)&e->reaper))
		uv_close((uv_handle_t *)&e->reaper, on_reaper_closed);
}

void
px_engine_poke(struct proxy_engine *e)
{
	if (!uv_is_closing((uv_handle_t *)&e->reaper) && !uv_is_active((uv_handle_t *)&e->reaper))
		uv_timer_start(&e->reaper, on_reaper, 0, 0);
}

/* ---- public API ------------------------------------------------------------ */

void
proxy_engine_on_hold(struct proxy_engine *e, void (*cb)(void *arg, const char *service),
    void *arg)
{
	e->hold_cb = cb;
	e->hold_arg = arg;
}

struct proxy_engine *
proxy_engine_new(uv_loop_t *loop)
{
	struct proxy_engine *e = xcalloc(1, sizeof(*e));

	e->loop = loop;
	e->rng[0] = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)e;
	e->rng[1] = 0x9e3779b97f4a7c15ULL ^ (uint64_t)time(NULL);
	for (int i = 0; i < 8; i++)
		px_random(e);
	uv_timer_init(loop, &e->reaper);
	e->reaper.data = e;
	uv_unref((uv_handle_t *)&e->reaper);
	e->hold_timer = xcalloc(1, sizeof(*e->hold_timer));
	uv_timer_init(loop, e->hold_timer);
	e->hold_timer->data = e;
	uv_unref((uv_handle_t *)e->hold_timer);
	return e;
}

/* Makes t (a new table, its reference taken over) the current one: the
 * endpoints of d's new clusters enter rotation with their labels, those
 * left in no cluster leave it (idle connections closed), listeners move. */
static void
table_commit(struct proxy_engine *e, struct px_table *t, struct table_diff *d, char **err)
{
	struct px_table *old = e->table;
	struct px_endpoint *ep;
	struct px_cluster *c;
	size_t i, k;

	for (i = 0; i < d->ncadded; i++) {
		c = d->cadded[i];
		for (k = 0; k < c->neps; k++) {
			ep = c->eps[k];
			ep->inuse++;
			ep->removed = false;
			if (c->labels[k].pod && strcmp(ep->pod, c->labels[k].pod) != 0) {
				free(ep->pod);
				ep->pod = xstrdup(c->labels[k].pod);
				memset(&ep->pod_st, 0, sizeof(ep->pod_st));	/* another pod */
			}
			if (c->labels[k].revision && strcmp(ep->revision, c->labels[k].revision) != 0) {
				free(ep->revision);
				ep->revision = xstrdup(c->labels[k].revision);
			}
		}
		free(c->labels);
		c->labels = NULL;
	}
	for (i = 0; i < d->ncdropped; i++) {
		c = d->cdropped[i];
		for (k = 0; k < c->neps; k++) {
			ep = c->eps[k];
			BUG_ON(ep->inuse == 0);
			if (--ep->inuse == 0) {
				ep->removed = true;
				px_pool_close_idle(ep);
			}
		}
	}
	for (i = 0; i < d->nldropped; i++)
		d->ldropped[i]->stale = true;
	listeners_diff(e, old, t, d, err);
	e->table = t;
	px_table_unref(e, old);
	diff_free(d);
	px_metrics_sweep_maybe(e);
	px_hold_retry(e);
}

/* A whole snapshot: every cluster and listener spec compiled anew. */
int
proxy_engine_apply(struct proxy_engine *e, const json_t *snapshot, char **err)
{
	uint64_t t0 = uv_hrtime();
	struct table_diff d = { 0 };
	struct px_table *t = NULL;
	int r;

	if (err)
		*err = NULL;
	if ((r = table_build(e, snapshot, &t, err)) < 0)
		return r;
	d.cadded = t->clusters;
	d.ncadded = t->nclusters;
	d.ladded = t->listeners;
	d.nladded = t->nlisteners;
	if (e->table) {
		d.cdropped = e->table->clusters;
		d.ncdropped = e->table->nclusters;
		d.ldropped = e->table->listeners;
		d.nldropped = e->table->nlisteners;
	}
	table_commit(e, t, &d, err);
	e->apply_ns = uv_hrtime() - t0;
	return 0;
}

int
proxy_engine_apply_delta(struct proxy_engine *e, int64_t version, const json_t *listeners,
    const json_t *clusters, char **err)
{
	uint64_t t0 = uv_hrtime();
	struct table_diff d = { 0 };
	struct px_table *t = NULL;
	int r;

	if (err)
		*err = NULL;
	if ((r = table_derive(e, e->table, version, listeners, clusters, &t, &d, err)) < 0)
		return r;
	table_commit(e, t, &d, err);
	e->apply_ns = uv_hrtime() - t0;
	return 0;
}

int64_t
proxy_engine_version(const struct proxy_engine *e)
{
	return e->table ? e->table->version : 0;
}

double
proxy_engine_apply_us(const struct proxy_engine *e)
{
	return (double)e->apply_ns / 1000.0;
}

void
proxy_engine_metrics(struct proxy_engine *e, struct buf *out)
{
	px_metrics_render(e, out);
}

void
proxy_engine_drain(struct proxy_engine *e, void (*done)(void *), void *arg)
{
	struct px_listener *l;

	e->draining = true;
	e->drain_cb = done;
	e->drain_arg = arg;
	for (l = e->listeners; l; l = l->next) {
		if (l->http)
			http_server_drain(l->http, on_listener_drained, e);
		px_tcp_unlisten(l);
	}
	px_engine_poke(e);
}

/* Closes everything; the engine's memory goes once the loop has run the
 * close callbacks (run the loop after this, as for any libuv handle). */
void
proxy_engine_free(struct proxy_engine *e)
{
	struct px_listener *l;
	struct px_endpoint *ep;
	size_t i;

	if (e == NULL)
		return;
	e->closing = true;
	e->drain_cb = NULL;
	for (l = e->listeners; l; l = l->next) {
		listener_remove(l, e->table);
		if (l->http) {
			http_server_stop(l->http);	/* aborts requests in flight */
			l->http = NULL;
		}
		px_tcp_unlisten(l);
	}
	px_tcp_close_all(e);
	px_hold_close(e);	/* the listeners' stop aborted every held request */
	for (i = 0; i < ARRAY_SIZE(e->eps); i++)
		for (ep = e->eps[i]; ep; ep = ep->hnext)
			px_pool_close_idle(ep);
	px_table_unref(e, e->table);
	e->table = NULL;
	uv_ref((uv_handle_t *)&e->reaper);
	px_engine_poke(e);
}
