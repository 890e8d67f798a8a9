/* proxy_hold.c — scale from zero: a request for a Service whose clusters
 * have no endpoint and a hold time ("hold_ms", the Service annotation
 * v6.dev/hold-requests-timeout) waits in a bounded queue instead of getting
 * a 503, the engine's hold callback tells the server (which starts a pod),
 * and the next table that gives the Service an endpoint sends it on; past
 * its hold time it gets the 503. Called by proxy_engine.c only: the request
 * path pays one test of the clusters' endpoint counts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy_int.h"
#include "proxy_upstream.h"

#define PX_HOLD_MAX		1024	/* held requests per proxy */
#define PX_HOLD_NOTIFY_MS	1000	/* the server is told again while it waits */

struct px_held {
	struct http_req *req;
	struct px_listener *l;
	uint64_t deadline;		/* uv_now() ms */
	struct px_held *next;
};

/* The hold time of route when none of its clusters has an endpoint, else 0. */
static unsigned
route_hold_ms(const struct px_route *r, const char **service)
{
	unsigned ms = 0;

	for (size_t i = 0; i < r->nbackends; i++) {
		const struct px_cluster *c = r->backends[i].cluster;
		if (c == NULL)
			continue;
		if (c->neps > 0)
			return 0;
		if (c->hold_ms > ms) {
			ms = c->hold_ms;
			*service = c->service;
		}
	}
	return ms;
}

static void
hold_arm(struct proxy_engine *e)
{
	uint64_t first = UINT64_MAX, now = uv_now(e->loop);

	if (e->hold_timer == NULL)
		return;		/* the engine is closing */
	for (struct px_held *h = e->held; h; h = h->next)
		if (h->deadline < first)
			first = h->deadline;
	if (first == UINT64_MAX)
		uv_timer_stop(e->hold_timer);
	else
		uv_timer_start(e->hold_timer, px_hold_expire, first > now ? first - now : 0, 0);
}

static void
held_unlink(struct proxy_engine *e, struct px_held *h)
{
	for (struct px_held **p = &e->held; *p; p = &(*p)->next)
		if (*p == h) {
			*p = h->next;
			e->nheld--;
			return;
		}
}

/* The client left while its request waited. */
static void
held_abort(struct http_req *req, void *arg)
{
	struct px_held *h = arg;
	struct proxy_engine *e = h->l->e;

	(void)req;
	held_unlink(e, h);
	px_listener_done(h->l);
	free(h);
	hold_arm(e);
}

static void
notify(struct proxy_engine *e, const char *service)
{
	uint64_t now = uv_now(e->loop);

	if (e->hold_cb == NULL || (e->hold_notified_ms && now - e->hold_notified_ms <
	    PX_HOLD_NOTIFY_MS && strcmp(e->hold_notified, service) == 0))
		return;
	e->hold_notified_ms = now;
	snprintf(e->hold_notified, sizeof(e->hold_notified), "%s", service);
	e->hold_cb(e->hold_arg, service);
}

bool
px_hold_maybe(struct proxy_engine *e, struct px_listener *l, const struct px_route *r,
    struct http_req *req)
{
	const char *service = "";
	unsigned ms = route_hold_ms(r, &service);

	if (ms == 0 || req->body_follows || req->upgrade)
		return false;	/* bodies and upgrades are not held: the 503 path */
	if (e->nheld >= PX_HOLD_MAX) {
		px_answer_local(e, NULL, req, 503, "too many requests waiting for an endpoint\n");
		return true;
	}
	struct px_held *h = xcalloc(1, sizeof(*h));
	*h = (struct px_held){ req, l, uv_now(e->loop) + ms, e->held };
	e->held = h;
	e->nheld++;
	l->inflight++;
	e->ninflight++;
	http_req_on_abort(req, held_abort, h);
	notify(e, service);
	hold_arm(e);
	return true;
}

void
px_hold_expire(uv_timer_t *t)
{
	struct proxy_engine *e = t->data;
	uint64_t now = uv_now(e->loop);

	for (struct px_held **p = &e->held; *p;) {
		struct px_held *h = *p;
		if (h->deadline > now) {
			p = &h->next;
			continue;
		}
		*p = h->next;
		e->nheld--;
		http_req_on_abort(h->req, NULL, NULL);
		px_answer_local(e, NULL, h->req, 503, "no endpoint became ready in time\n");
		px_listener_done(h->l);
		free(h);
	}
	for (struct px_held *h = e->held; h; h = h->next) {
		const char *service = "";
		struct px_route *r = h->l->spec ? px_route_find(h->l->spec, h->req) : NULL;
		if (r && route_hold_ms(r, &service))
			notify(e, service);	/* still nothing: remind the server */
	}
	hold_arm(e);
}

void
px_hold_retry(struct proxy_engine *e)
{
	struct px_held *list = e->held, *h, *next;

	if (list == NULL)
		return;
	e->held = NULL;
	e->nheld = 0;
	for (h = list; h; h = next) {
		struct px_listener *l = h->l;
		const char *service = "";
		struct px_route *r = l->spec ? px_route_find(l->spec, h->req) : NULL;
		next = h->next;
		if (r && route_hold_ms(r, &service)) {	/* still no endpoint */
			h->next = e->held;
			e->held = h;
			e->nheld++;
			continue;
		}
		http_req_on_abort(h->req, NULL, NULL);
		if (r == NULL)
			px_answer_local(e, NULL, h->req, 404, "no route\n");
		else
			px_forward(e, l, l->table ? l->table : e->table, r, h->req);
		px_listener_done(l);
		free(h);
	}
	hold_arm(e);
}

static void
hold_timer_closed(uv_handle_t *h)
{
	free(h);
}

void
px_hold_close(struct proxy_engine *e)
{
	if (e->hold_timer && !uv_is_closing((uv_handle_t *)e->hold_timer))
		uv_close((uv_handle_t *)e->hold_timer, hold_timer_closed);
	e->hold_timer = NULL;
}
