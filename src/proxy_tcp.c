/* proxy_tcp.c — plain TCP proxying and the byte splice under it: a TCP
 * listener accepts, picks an endpoint of its cluster round robin (another
 * one when a connect fails), then copies bytes both ways with backpressure
 * (a side stops being read while the other's write queue is long) and
 * half-close (EOF on one side becomes a shutdown of the other). The HTTP
 * proxy reuses the splice for WebSocket and other upgrades. Reads go
 * through one engine-wide buffer, so an idle session holds no buffer. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "net.h"
#include "proxy_int.h"

struct side {
	uv_tcp_t *h;
	unsigned writes;
	bool eof;		/* read EOF from this side */
	bool shut;		/* shutdown of this side's write direction sent */
	bool reading;
};

struct splice {
	struct proxy_engine *e;
	struct px_listener *l;
	struct px_stat *st;
	struct px_cluster *cluster;	/* TCP listener: where to connect */
	struct side s[2];		/* 0 client, 1 upstream */
	uv_tcp_t client;
	uv_timer_t timer;
	uv_connect_t creq;
	uv_shutdown_t sreq[2];
	struct px_endpoint *ep;
	struct px_endpoint *tried[PX_MAX_ATTEMPTS];
	size_t ntried;
	int handles;
	bool connected;
	bool closing;
	struct splice *next, *prev;	/* e->splices */
};

static void splice_read_sync(struct splice *sp, int i);
static void tcp_connect_next(struct splice *sp);

static void
on_handle_close(uv_handle_t *h)
{
	struct splice *sp = h->data;

	if (h != (uv_handle_t *)&sp->client && h != (uv_handle_t *)&sp->timer)
		free(h);
	if (--sp->handles > 0)
		return;
	if (sp->ep)
		px_endpoint_unref(sp->e, sp->ep);
	if (sp->cluster)
		px_cluster_unref(sp->e, sp->cluster);	/* outlives the table it came from */
	px_stat_put(sp->st);
	if (sp->prev)
		sp->prev->next = sp->next;
	else
		sp->e->splices = sp->next;
	if (sp->next)
		sp->next->prev = sp->prev;
	sp->e->nsplices--;
	if (sp->l) {
		sp->l->tcp_conns--;
		px_listener_done(sp->l);
	}
	px_engine_poke(sp->e);
	free(sp);
}

static void
splice_close(struct splice *sp)
{
	int i;

	if (sp->closing)
		return;
	sp->closing = true;
	for (i = 0; i < 2; i++)
		if (sp->s[i].h && !uv_is_closing((uv_handle_t *)sp->s[i].h))
			uv_close((uv_handle_t *)sp->s[i].h, on_handle_close);
	uv_close((uv_handle_t *)&sp->timer, on_handle_close);
}

/* Both directions finished: close. */
static void
splice_check_done(struct splice *sp)
{
	if (sp->s[0].eof && sp->s[1].eof && sp->s[0].writes == 0 && sp->s[1].writes == 0)
		splice_close(sp);
}

static void
on_shutdown(uv_shutdown_t *r, int status)
{
	struct splice *sp = r->data;

	if (sp->closing)
		return;
	if (status < 0) {
		splice_close(sp);
		return;
	}
	splice_check_done(sp);
}

/* Side i's peer sent EOF: pass it on once what goes to i is written. */
static void
splice_shut(struct splice *sp, int i)
{
	if (sp->s[i].shut || sp->s[i].writes > 0 || !sp->s[1 - i].eof)
		return;
	sp->s[i].shut = true;
	sp->sreq[i].data = sp;
	if (uv_shutdown(&sp->sreq[i], (uv_stream_t *)sp->s[i].h, on_shutdown) < 0)
		splice_close(sp);
}

static void
on_swrite(uv_write_t *wr, int status)
{
	struct net_write *w = (struct net_write *)wr;
	struct splice *sp = w->owner;
	int to = w->tag;

	free(w);
	sp->s[to].writes--;
	if (sp->closing)
		return;
	if (status < 0) {
		splice_close(sp);
		return;
	}
	if (sp->s[to].writes == 0) {
		splice_read_sync(sp, 1 - to);
		splice_shut(sp, to);
		splice_check_done(sp);
	}
}

/* Writes to side `to`: straight to the kernel when nothing is queued, the
 * rest copied. Returns 0 or a negative errno. */
static int
splice_send(struct splice *sp, int to, const char *data, size_t len)
{
	uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
	int r;

	if (len == 0)
		return 0;
	r = net_send((uv_stream_t *)sp->s[to].h, &b, 1, &sp->s[to].writes, on_swrite, sp, to);
	return r < 0 ? r : 0;
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct splice *sp = h->data;

	(void)suggested;
	*b = uv_buf_init(sp->e->sbuf, sizeof(sp->e->sbuf));
}

static int
side_of(struct splice *sp, uv_stream_t *s)
{
	return s == (uv_stream_t *)sp->s[0].h ? 0 : 1;
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct splice *sp = s->data;
	int i = side_of(sp, s);

	if (n == 0 || sp->closing)
		return;
	if (n == UV_EOF) {
		sp->s[i].eof = true;
		splice_read_sync(sp, i);
		splice_shut(sp, 1 - i);
		splice_check_done(sp);
		return;
	}
	if (n < 0 || splice_send(sp, 1 - i, b->base, (size_t)n) < 0) {
		splice_close(sp);
		return;
	}
	if (sp->st) {
		if (i == 0)
			sp->st->bytes_in += (uint64_t)n;
		else
			sp->st->bytes_out += (uint64_t)n;
	}
	splice_read_sync(sp, i);
}

/* Reads side i unless it ended or the other side's queue is long. */
static void
splice_read_sync(struct splice *sp, int i)
{
	struct side *sd = &sp->s[i];
	bool want;

	if (sp->closing || !sp->connected)
		return;
	want = !sd->eof && uv_stream_get_write_queue_size((uv_stream_t *)sp->s[1 - i].h) <
	    PX_WQ_HIGH;
	if (want == sd->reading)
		return;
	sd->reading = want;
	if (!want)
		uv_read_stop((uv_stream_t *)sd->h);
	else if (uv_read_start((uv_stream_t *)sd->h, on_alloc, on_read) < 0)
		splice_close(sp);
}

static void
splice_begin(struct splice *sp)
{
	sp->connected = true;
	uv_tcp_nodelay(sp->s[1].h, 1);
	splice_read_sync(sp, 0);
	splice_read_sync(sp, 1);
}

static struct splice *
splice_new(struct proxy_engine *e, struct px_listener *l, struct px_stat *st)
{
	struct splice *sp = xcalloc(1, sizeof(*sp));

	sp->e = e;
	sp->l = l;
	sp->st = st;
	if (st)
		st->refs++;	/* outlives the request (an upgrade) it came from */
	sp->s[0].h = &sp->client;
	sp->client.data = sp->timer.data = sp;
	uv_tcp_init(e->loop, &sp->client);
	uv_timer_init(e->loop, &sp->timer);
	sp->handles = 2;
	sp->next = e->splices;
	if (e->splices)
		e->splices->prev = sp;
	e->splices = sp;
	e->nsplices++;
	if (l) {
		l->inflight++;
		l->tcp_conns++;
		e->ninflight++;
	}
	return sp;
}

static uv_tcp_t *
upstream_handle(struct splice *sp)
{
	uv_tcp_t *h = xmalloc(sizeof(*h));

	uv_tcp_init(sp->e->loop, h);
	h->data = sp;
	sp->s[1].h = h;
	sp->handles++;
	return h;
}

int
px_splice_fds(struct proxy_engine *e, struct px_listener *l, struct px_stat *st,
    uv_os_sock_t client, uv_os_sock_t upstream, const uv_buf_t *to_client, unsigned nc,
    const char *to_upstream, size_t nu)
{
	struct splice *sp = splice_new(e, l, st);
	unsigned i;
	int r;

	upstream_handle(sp);
	if ((r = uv_tcp_open(&sp->client, client)) < 0) {
		close(client);
		close(upstream);
		splice_close(sp);
		return r;
	}
	if ((r = uv_tcp_open(sp->s[1].h, upstream)) < 0) {
		close(upstream);
		splice_close(sp);
		return r;
	}
	for (i = 0; i < nc; i++)
		if ((r = splice_send(sp, 0, to_client[i].base, to_client[i].len)) < 0)
			goto fail;
	if ((r = splice_send(sp, 1, to_upstream, nu)) < 0)
		goto fail;
	splice_begin(sp);
	return 0;
fail:
	splice_close(sp);
	return r;
}

/* ---- TCP listeners ------------------------------------------------------ */

static void
on_connect_timeout(uv_timer_t *t)
{
	struct splice *sp = t->data;

	if (!sp->connected && !sp->closing) {
		/* closing the handle cancels the connect: on_tcp_connect runs
		 * with UV_ECANCELED and tries the next endpoint */
		uv_close((uv_handle_t *)sp->s[1].h, on_handle_close);
	}
}

static void
on_tcp_connect(uv_connect_t *cr, int status)
{
	struct splice *sp = cr->data;
	struct px_cluster *c = sp->cluster;
	uint64_t now = uv_now(sp->e->loop);

	if (sp->closing)
		return;
	uv_timer_stop(&sp->timer);
	if (status == 0) {
		px_outlier_report(c, sp->ep, false, now);
		splice_begin(sp);
		return;
	}
	if (sp->st)
		sp->st->errors[status == UV_ECANCELED ? PX_E_TIMEOUT : PX_E_CONNECT]++;
	px_outlier_report(c, sp->ep, true, now);
	if (!uv_is_closing((uv_handle_t *)sp->s[1].h))
		uv_close((uv_handle_t *)sp->s[1].h, on_handle_close);
	sp->s[1].h = NULL;
	tcp_connect_next(sp);
}

static void
tcp_connect_next(struct splice *sp)
{
	struct px_cluster *c = sp->cluster;
	struct px_endpoint *ep = NULL;

	if (sp->ep) {
		px_endpoint_unref(sp->e, sp->ep);
		sp->ep = NULL;
	}
	if (sp->ntried < PX_MAX_ATTEMPTS)
		ep = px_pick_endpoint(c, sp->tried, sp->ntried, uv_now(sp->e->loop));
	if (ep == NULL) {
		splice_close(sp);
		return;
	}
	sp->tried[sp->ntried++] = ep;
	sp->ep = ep;
	ep->refs++;
	px_stat_put(sp->st);
	sp->st = px_stat_get(sp->e, c->service, sp->l->name, ep->revision);
	upstream_handle(sp);
	sp->creq.data = sp;
	if (uv_tcp_connect(&sp->creq, sp->s[1].h, (struct sockaddr *)&ep->sa,
	    on_tcp_connect) < 0) {
		uv_close((uv_handle_t *)sp->s[1].h, on_handle_close);
		sp->s[1].h = NULL;
		tcp_connect_next(sp);
		return;
	}
	uv_timer_start(&sp->timer, on_connect_timeout,
	    c->connect_timeout_ms ? c->connect_timeout_ms : 1000, 0);
}

static void
on_tcp_connection(uv_stream_t *ls, int status)
{
	struct px_listener *l = ls->data;
	struct splice *sp;

	if (status < 0)
		return;
	sp = splice_new(l->e, l, NULL);
	if (uv_accept(ls, (uv_stream_t *)&sp->client) < 0 || l->spec == NULL ||
	    l->spec->cluster == NULL) {
		splice_close(sp);
		return;
	}
	uv_tcp_nodelay(&sp->client, 1);
	sp->cluster = l->spec->cluster;
	sp->cluster->refs++;
	tcp_connect_next(sp);
}

int
px_tcp_listen(struct px_listener *l, int fd)
{
	struct sockaddr_storage ss;
	int r;

	if (fd >= 0) {
		l->tcp = xmalloc(sizeof(*l->tcp));
		uv_tcp_init(l->e->loop, l->tcp);
		l->tcp->data = l;
		if ((r = uv_tcp_open(l->tcp, fd)) < 0)
			close(fd);	/* not the handle's yet */
		if (r < 0 || (r = uv_listen((uv_stream_t *)l->tcp, 511, on_tcp_connection)) < 0) {
			px_tcp_unlisten(l);
			return r;
		}
		return 0;
	}
	memset(&ss, 0, sizeof(ss));
	if (uv_ip4_addr(l->address, l->port, (struct sockaddr_in *)&ss) < 0 &&
	    uv_ip6_addr(l->address, l->port, (struct sockaddr_in6 *)&ss) < 0)
		return -EINVAL;
	l->tcp = xmalloc(sizeof(*l->tcp));
	uv_tcp_init(l->e->loop, l->tcp);
	l->tcp->data = l;
	if ((r = uv_tcp_bind(l->tcp, (struct sockaddr *)&ss, 0)) < 0 ||
	    (r = uv_listen((uv_stream_t *)l->tcp, 511, on_tcp_connection)) < 0) {
		px_tcp_unlisten(l);
		return r;
	}
	return 0;
}

static void
free_handle(uv_handle_t *h)
{
	free(h);
}

void
px_tcp_unlisten(struct px_listener *l)
{
	if (l->tcp == NULL)
		return;
	uv_close((uv_handle_t *)l->tcp, free_handle);
	l->tcp = NULL;
}

void
px_tcp_close_all(struct proxy_engine *e)
{
	for (struct splice *sp = e->splices; sp; sp = sp->next)
		splice_close(sp);
}
