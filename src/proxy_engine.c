/* proxy_engine.c — the data path's top: applies routing snapshots
 * atomically (the whole JSON is compiled into a new table first; only a
 * valid one replaces the old), keeps listeners open across snapshots (diffed
 * by name; removed ones drain), owns the endpoint registry shared by every
 * table, and routes each HTTP request to proxy_upstream.c. Called by
 * proxy_main.c (`v6 proxy`) and by the tests; proxy.h is the contract. */
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
	char *pod;
	char *revision;
};

static void
table_free(struct proxy_engine *e, struct px_table *t)
{
	size_t i, k;

	for (i = 0; i < t->nlisteners; i++) {
		struct px_lspec *ls = &t->listeners[i];
		for (k = 0; k < ls->nroutes; k++)
			px_route_clear(&ls->routes[k]);
		free(ls->routes);
		free(ls->name);
		free(ls->address);
	}
	free(t->listeners);
	for (i = 0; i < t->nclusters; i++) {
		struct px_cluster *c = &t->clusters[i];
		for (k = 0; k < c->neps; k++)
			px_endpoint_unref(e, c->eps[k]);
		free(c->eps);
		free(c->name);
		free(c->service);
	}
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
    struct px_cluster *c, struct ep_label **labels, char **err)
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
	    uint_field(j, "idle_timeout_ms", 60000, &c->idle_timeout_ms) < 0 ||
	    uint_field(j, "outlier_consecutive_failures", PX_OUTLIER_FAILS,
	    &c->outlier_fails) < 0 ||
	    uint_field(j, "outlier_ejection_ms", PX_OUTLIER_MS, &c->outlier_ms) < 0)
		return fail_msg(err, "cluster %s: bad timeout or outlier setting", name);
	if (eps && !json_is_array(eps))
		return fail_msg(err, "cluster %s: endpoints must be an array", name);
	c->eps = xcalloc(json_array_size(eps) + 1, sizeof(*c->eps));
	*labels = xcalloc(json_array_size(eps) + 1, sizeof(**labels));
	json_array_foreach(eps, i, it) {
		port = (int)json_integer_value(json_object_get(it, "port"));
		if (parse_addr(jstr(it, "address"), port, &ss) < 0)
			return fail_msg(err, "cluster %s: bad endpoint address or port", name);
		snprintf(key, sizeof(key), strchr(jstr(it, "address"), ':') ? "[%s]:%d" : "%s:%d",
		    jstr(it, "address"), port);
		c->eps[c->neps] = ep_get(e, key, &ss);
		c->eps[c->neps]->refs++;
		(*labels)[c->neps].pod = (char *)jstr(it, "pod");
		(*labels)[c->neps].revision = (char *)jstr(it, "revision");
		c->neps++;
	}
	return 0;
}

static int
cmp_cluster_name(const void *key, const void *c)
{
	return strcmp(key, ((const struct px_cluster *)c)->name);
}

/* The table's clusters and listeners are sorted by name: lookups bisect,
 * so that compiling a table stays linear in its size. */
struct px_cluster *
px_cluster_find(struct px_table *t, const char *name)
{
	if (name == NULL || t->nclusters == 0)
		return NULL;
	return bsearch(name, t->clusters, t->nclusters, sizeof(*t->clusters), cmp_cluster_name);
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
	if (ls != t->listeners && strcmp(ls[-1].name, name) == 0)	/* sorted */
		return fail_msg(err, "listener %s: duplicate name", name);
	ls->address = xstrdup(jstr(j, "address") ? jstr(j, "address") : "0.0.0.0");
	ls->port = (int)json_integer_value(json_object_get(j, "port"));
	if (parse_addr(ls->address, ls->port, &ss) < 0)
		return fail_msg(err, "listener %s: bad address or port", name);
	if (proto == NULL || strcmp(proto, "HTTP") == 0)
		ls->proto = PX_HTTP;
	else if (strcmp(proto, "TCP") == 0)
		ls->proto = PX_TCP;
	else
		return fail_msg(err, "listener %s: protocol must be HTTP or TCP", name);
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

/* Compiles a snapshot into a new table without touching the running one;
 * endpoint labels are returned for the commit. Clusters and listeners are
 * compiled in name order (px_cluster_find, lspec_find bisect). */
static int
table_build(struct proxy_engine *e, const json_t *snap, struct px_table **out,
    struct ep_label ***labels, char **err)
{
	const json_t *clusters = json_object_get(snap, "clusters");
	const json_t *listeners = json_object_get(snap, "listeners"), *v;
	struct px_table *t = xcalloc(1, sizeof(*t));
	const char **names = NULL, *name;
	json_t **ls = NULL, *it;
	size_t i, n = 0;
	int r = -EINVAL;

	t->refs = 1;
	*labels = NULL;
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
	*labels = xcalloc(n + 1, sizeof(**labels));
	for (i = 0; i < n; i++) {
		r = cluster_build(e, names[i], json_object_get(clusters, names[i]),
		    &t->clusters[t->nclusters], &(*labels)[t->nclusters], err);
		t->nclusters++;
		if (r < 0)
			goto fail;
	}
	n = json_array_size(listeners);
	ls = xcalloc(n + 1, sizeof(*ls));
	json_array_foreach(listeners, i, it)
		ls[i] = it;
	qsort(ls, n, sizeof(*ls), cmp_listener_json);
	t->listeners = xcalloc(n + 1, sizeof(*t->listeners));
	for (i = 0; i < n; i++) {
		t->nlisteners = i + 1;
		if ((r = lspec_build(ls[i], t, &t->listeners[i], err)) < 0)
			goto fail;
	}
	free(names);
	free(ls);
	*out = t;
	return 0;
fail:
	if (*labels)
		for (i = 0; i < t->nclusters; i++)
			free((*labels)[i]);
	free(*labels);
	*labels = NULL;
	free(names);
	free(ls);
	table_free(e, t);
	return r < 0 ? r : -EINVAL;
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
	if (fd < 0)
		return http_server_start(l->e->loop, l->address, l->port, &cfg, &l->http);
	return http_server_open(l->e->loop, fd, &cfg, &l->http);
}

static void
listener_set_spec(struct px_listener *l, struct px_table *t, struct px_lspec *ls)
{
	t->refs++;
	px_table_unref(l->e, l->table);
	l->table = t;
	l->spec = ls;
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
	px_table_unref(e, l->table);
	free(l->name);
	free(l->address);
	free(l);
}

/* Stops accepting; the listener is freed (its idle keep-alive connections
 * closed) by the reaper once its in-flight requests are over. */
static void
listener_remove(struct px_listener *l)
{
	if (l->removed)
		return;
	l->removed = true;
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
	return strcmp(key, ((const struct px_lspec *)ls)->name);
}

static struct px_lspec *
lspec_find(struct px_table *t, const char *name)
{
	if (t->nlisteners == 0)
		return NULL;
	return bsearch(name, t->listeners, t->nlisteners, sizeof(*t->listeners),
	    cmp_lspec_name);
}

/* Keeps listeners whose name, protocol, address and port stay; drains the
 * others; opens the new ones. Bind failures are reported in *err. */
static void
listeners_diff(struct proxy_engine *e, struct px_table *t, char **err)
{
	struct px_listener *l, *next;
	struct px_lspec *ls;
	bool *kept = xcalloc(t->nlisteners + 1, sizeof(*kept));
	size_t i;
	int r;

	for (l = e->listeners; l; l = next) {
		next = l->next;
		if (l->removed)
			continue;
		ls = lspec_find(t, l->name);
		if (ls && lspec_same(l, ls) && !kept[ls - t->listeners]) {
			listener_set_spec(l, t, ls);
			kept[ls - t->listeners] = true;
		} else {
			listener_remove(l);
		}
	}
	for (i = 0; i < t->nlisteners; i++) {
		ls = &t->listeners[i];
		if (kept[i])
			continue;
		l = xcalloc(1, sizeof(*l));
		l->e = e;
		l->name = xstrdup(ls->name);
		l->address = xstrdup(ls->address);
		l->port = ls->port;
		l->proto = ls->proto;
		listener_set_spec(l, t, ls);
		l->next = e->listeners;
		e->listeners = l;
		if ((r = listener_open(l)) < 0) {
			log_warn("proxy", "listener %s on %s:%d: %s", l->name, l->address, l->port,
			    uv_strerror(r));
			if (err && *err == NULL)
				*err = xasprintf("listener %s on %s:%d: %s", l->name, l->address,
				    l->port, uv_strerror(r));
			l->removed = true;
			px_engine_poke(e);
		}
	}
	free(kept);
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
	px_forward(e, l, l->table, route, req);
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
	return e;
}

int
proxy_engine_apply(struct proxy_engine *e, const json_t *snapshot, char **err)
{
	uint64_t t0 = uv_hrtime();
	struct ep_label **labels;
	struct px_endpoint *ep;
	struct px_table *t, *old;
	size_t i, k;
	int r;

	if (err)
		*err = NULL;
	if ((r = table_build(e, snapshot, &t, &labels, err)) < 0)
		return r;
	for (i = 0; i < ARRAY_SIZE(e->eps); i++)
		for (ep = e->eps[i]; ep; ep = ep->hnext)
			ep->removed = true;
	for (i = 0; i < t->nclusters; i++) {
		for (k = 0; k < t->clusters[i].neps; k++) {
			ep = t->clusters[i].eps[k];
			ep->removed = false;
			if (labels[i][k].pod && strcmp(ep->pod, labels[i][k].pod) != 0) {
				free(ep->pod);
				ep->pod = xstrdup(labels[i][k].pod);
			}
			if (labels[i][k].revision && strcmp(ep->revision, labels[i][k].revision) != 0) {
				free(ep->revision);
				ep->revision = xstrdup(labels[i][k].revision);
			}
		}
		free(labels[i]);
	}
	free(labels);
	for (i = 0; i < ARRAY_SIZE(e->eps); i++)
		for (ep = e->eps[i]; ep; ep = ep->hnext)
			if (ep->removed)
				px_pool_close_idle(ep);
	old = e->table;
	e->table = t;
	listeners_diff(e, t, err);
	px_table_unref(e, old);
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
		l->removed = true;
		if (l->http) {
			http_server_stop(l->http);	/* aborts requests in flight */
			l->http = NULL;
		}
		px_tcp_unlisten(l);
	}
	px_tcp_close_all(e);
	for (i = 0; i < ARRAY_SIZE(e->eps); i++)
		for (ep = e->eps[i]; ep; ep = ep->hnext)
			px_pool_close_idle(ep);
	px_table_unref(e, e->table);
	e->table = NULL;
	uv_ref((uv_handle_t *)&e->reaper);
	px_engine_poke(e);
}
