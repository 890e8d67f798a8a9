/* proxy_keep.c — in the server: copies of the running proxy's listening
 * sockets, so a proxy killed with SIGKILL loses no connection. The kernel
 * keeps a socket open while any process holds it: connections made while no
 * proxy runs wait in its backlog, and the proxy the feed starts next takes
 * the sockets over (`v6 proxy --inherit STATE/keeper.sock`) and answers
 * them. Fetched from the proxy's handoff.sock (proxy_handoff.c) after the
 * proxy applied a change of its listeners (and let go of before it is sent:
 * a copy must never keep a port bound that the proxy closes to bind it
 * anew); served on STATE/keeper.sock.
 * Called by proxy_feed.c; non-blocking except the small send to a new proxy. */
#include "proxy_keep.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "proxy_handoff.h"
#include "util.h"

#define KEEP_DELAY_MS	100	/* changes of listeners coalesce into one fetch */

struct kept {
	char proto[8];
	char *address;
	int port;
	int fd;
};

struct kept_set {
	struct kept *v;
	size_t n, cap;
};

enum kconn_kind { KC_FETCH, KC_SERVE };

/* A connection: fetching from the proxy, or serving a new proxy. */
struct kconn {
	uv_poll_t poll;
	int fd;
	enum kconn_kind kind;
	struct proxy_keep *k;
	struct kept_set got;		/* KC_FETCH: received so far */
	struct kconn *next, **prevp;	/* k->conns */
};

struct proxy_keep {
	uv_loop_t *loop;
	char *path, *handoff_path;
	int lfd;			/* keeper.sock, -1 when none */
	ino_t ino;
	uv_poll_t lpoll;
	uv_timer_t timer;
	struct kept_set held;
	struct kconn *conns;		/* open connections */
	struct kconn *fetch;		/* at most one fetch at a time */
	bool again;			/* a change came during the fetch */
	bool closing;
	int handles;
};

static void
set_clear(struct kept_set *s)
{
	for (size_t i = 0; i < s->n; i++) {
		close(s->v[i].fd);
		free(s->v[i].address);
	}
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static void
set_add(void *arg, const char *proto, const char *address, int port, int fd)
{
	struct kept_set *s = arg;
	struct kept *it;

	if (strlen(proto) >= sizeof(it->proto)) {
		close(fd);
		return;
	}
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	it = &s->v[s->n++];
	strcpy(it->proto, proto);
	it->address = xstrdup(address);
	it->port = port;
	it->fd = fd;
}

static void
held_each(void *ctx, proxy_listen_fn fn, void *arg)
{
	const struct kept_set *s = ctx;

	for (size_t i = 0; i < s->n; i++)
		fn(arg, s->v[i].proto, s->v[i].address, s->v[i].port, s->v[i].fd);
}

static void
keep_unref(struct proxy_keep *k)
{
	if (--k->handles > 0 || !k->closing)
		return;
	set_clear(&k->held);
	free(k->path);
	free(k->handoff_path);
	free(k);
}

static void
on_closed(uv_handle_t *h)
{
	keep_unref(h->data);
}

static void
on_kconn_closed(uv_handle_t *h)
{
	struct kconn *c = h->data;
	struct proxy_keep *k = c->k;

	close(c->fd);
	set_clear(&c->got);
	free(c);
	keep_unref(k);
}

static void keep_fetch(struct proxy_keep *k);

static void
on_timer(uv_timer_t *t)
{
	keep_fetch(t->data);
}

static void
kconn_close(struct kconn *c)
{
	struct proxy_keep *k = c->k;

	if (k->fetch == c) {
		k->fetch = NULL;
		if (k->again && !k->closing) {
			k->again = false;
			uv_timer_start(&k->timer, on_timer, KEEP_DELAY_MS, 0);
		}
	}
	if (c->next)
		c->next->prevp = c->prevp;
	*c->prevp = c->next;
	uv_close((uv_handle_t *)&c->poll, on_kconn_closed);
}

static struct kconn *
kconn_new(struct proxy_keep *k, int fd, enum kconn_kind kind, uv_poll_cb cb)
{
	struct kconn *c = xcalloc(1, sizeof(*c));

	c->fd = fd;
	c->kind = kind;
	c->k = k;
	c->next = k->conns;
	if (c->next)
		c->next->prevp = &c->next;
	c->prevp = &k->conns;
	k->conns = c;
	uv_poll_init(k->loop, &c->poll, fd);
	c->poll.data = c;
	k->handles++;
	uv_poll_start(&c->poll, UV_READABLE | UV_DISCONNECT, cb);
	return c;
}

/* The proxy's sockets arrive; at the last message they replace the held
 * ones (those of listeners the proxy closed are let go). */
static void
on_fetch(uv_poll_t *h, int status, int events)
{
	struct kconn *c = h->data;
	struct proxy_keep *k = c->k;
	int rc = status < 0 ? status : 1;

	(void)events;
	while (rc == 1)
		rc = proxy_handoff_recv_one(c->fd, set_add, &c->got);
	if (rc == -EAGAIN)
		return;
	if (rc == 0) {
		struct kept_set old = k->held;
		k->held = c->got;
		memset(&c->got, 0, sizeof(c->got));
		set_clear(&old);
		proxy_handoff_note(c->fd, "{\"kept\":true}");
		log_debug("proxy", "keeping %zu listening sockets of the proxy", k->held.n);
	} else if (rc != -ECONNRESET) {
		log_warn("proxy", "fetching the proxy's listening sockets: %s", strerror(-rc));
	} else {
		k->again = true;	/* busy with a successor, or draining: later */
	}
	kconn_close(c);
}

static void
keep_fetch(struct proxy_keep *k)
{
	int fd;

	if (k->closing)
		return;
	if (k->fetch) {
		k->again = true;
		return;
	}
	if ((fd = proxy_unix_connect(k->handoff_path, true)) < 0) {
		log_debug("proxy", "%s: %s", k->handoff_path, strerror(-fd));
		return;
	}
	k->fetch = kconn_new(k, fd, KC_FETCH, on_fetch);
}

void
proxy_keep_refresh(struct proxy_keep *k)
{
	if (k && !k->closing && !uv_is_active((uv_handle_t *)&k->timer))
		uv_timer_start(&k->timer, on_timer, KEEP_DELAY_MS, 0);
}

void
proxy_keep_drop(struct proxy_keep *k)
{
	if (k == NULL)
		return;
	if (k->fetch)
		kconn_close(k->fetch);	/* what it brings may be as old */
	k->again = false;
	uv_timer_stop(&k->timer);
	set_clear(&k->held);
}

/* The new proxy answers "ready" once it serves, or hangs up. */
static void
on_served(uv_poll_t *h, int status, int events)
{
	struct kconn *c = h->data;
	char buf[64];

	(void)events;
	if (status >= 0 && recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT) < 0 && errno == EAGAIN)
		return;
	kconn_close(c);
}

/* A new proxy connected on keeper.sock: it gets copies of the held sockets. */
static void
on_keeper_connection(uv_poll_t *h, int status, int events)
{
	struct proxy_keep *k = h->data;
	int fd, rc;

	(void)events;
	if (status < 0 || (fd = accept4(k->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) < 0)
		return;
	if ((rc = proxy_handoff_send_each(fd, held_each, &k->held)) < 0) {
		log_warn("proxy", "handing the kept listening sockets over: %s", strerror(-rc));
		close(fd);
		return;
	}
	log_info("proxy", "handed %zu kept listening sockets to the new proxy", k->held.n);
	kconn_new(k, fd, KC_SERVE, on_served);
}

int
proxy_keep_start(uv_loop_t *loop, const char *dir, struct proxy_keep **out)
{
	struct proxy_keep *k = xcalloc(1, sizeof(*k));
	struct stat sb;
	int rc;

	k->loop = loop;
	k->path = xasprintf("%s/keeper.sock", dir);
	k->handoff_path = xasprintf("%s/handoff.sock", dir);
	uv_timer_init(loop, &k->timer);
	k->timer.data = k;
	k->handles = 1;
	if ((k->lfd = proxy_unix_listen(k->path, SOCK_SEQPACKET)) < 0) {
		rc = k->lfd;
		k->closing = true;
		uv_close((uv_handle_t *)&k->timer, on_closed);
		return rc;
	}
	if (stat(k->path, &sb) == 0)
		k->ino = sb.st_ino;
	uv_poll_init(loop, &k->lpoll, k->lfd);
	k->lpoll.data = k;
	k->handles++;
	uv_poll_start(&k->lpoll, UV_READABLE, on_keeper_connection);
	*out = k;
	return 0;
}

const char *
proxy_keep_path(const struct proxy_keep *k)
{
	return k ? k->path : NULL;
}

void
proxy_keep_stop(struct proxy_keep *k)
{
	struct stat sb;

	if (k == NULL)
		return;
	k->closing = true;
	while (k->conns)
		kconn_close(k->conns);
	if (stat(k->path, &sb) == 0 && sb.st_ino == k->ino)
		unlink(k->path);
	uv_close((uv_handle_t *)&k->lpoll, on_closed);
	close(k->lfd);
	uv_close((uv_handle_t *)&k->timer, on_closed);
}
