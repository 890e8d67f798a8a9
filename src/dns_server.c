/* dns_server.c — the cluster DNS server on the server's loop: UDP and TCP on
 * --cluster-dns, answers from dns.c over Services and Endpoints kept by a
 * store watch (so an answer changes in the loop turn of the Endpoints'
 * commit), other names forwarded to the upstream resolver with a deadline
 * (SERVFAIL after it, never a hang). Started and stopped by server.c. */
#include "dns.h"
#include "log.h"
#include "obj.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

enum { TCP_MAX_CONNS = 256, TCP_IDLE_MS = 10000, FWD_MAX = 1024 };

struct dns_server {
	struct api *api;
	uv_loop_t *loop;
	json_t *svcs, *eps;		/* "ns/name" -> object */
	struct store_watch *sw;
	uv_udp_t udp;
	uv_tcp_t tcp;
	char ip[INET6_ADDRSTRLEN + 8];
	int port;
	struct sockaddr_storage upstream;
	bool have_upstream;
	int timeout_ms;
	int handles;			/* open handles; freed at 0 once stopping */
	bool stopping;
	struct tconn *conns;
	struct fwd *fwds;
	int n_conns, n_fwds;
	uint64_t queries, forwarded, failed;
};

/* A TCP client: length-prefixed messages in, answers out in any order. */
struct tconn {
	struct dns_server *d;
	uv_tcp_t h;
	uv_timer_t idle;
	struct buf in;
	int refs;			/* the handles + forwards pending */
	bool closing;
	struct tconn *next, *prev;
};

/* A query forwarded upstream, answered to a UDP client or a TCP one. */
struct fwd {
	struct dns_server *d;
	uv_udp_t sock;
	uv_timer_t timer;
	ldns_pkt *query;
	struct sockaddr_storage client;	/* UDP */
	struct tconn *tc;		/* TCP, referenced */
	int open;
	bool done;
	struct fwd *next, *prev;
};

#define LIST_ADD(head, e) do {					\
		(e)->next = (head);					\
		(e)->prev = NULL;					\
		if (head)						\
			(head)->prev = (e);				\
		(head) = (e);						\
	} while (0)
#define LIST_DEL(head, e) do {					\
		if ((e)->prev)						\
			(e)->prev->next = (e)->next;			\
		else							\
			(head) = (e)->next;				\
		if ((e)->next)						\
			(e)->next->prev = (e)->prev;			\
	} while (0)

static void dns_free_if_done(struct dns_server *d);

/* ---- the view, kept by a watch ---------------------------------------- */

static void
track(json_t *map, enum store_event ev, const json_t *obj)
{
	char *key = xasprintf("%s/%s", obj_namespace(obj), obj_name(obj));
	if (ev == STORE_DELETED)
		json_object_del(map, key);
	else
		json_object_set_new(map, key, json_deep_copy(obj));
	free(key);
}

static void
on_event(void *arg, enum store_event ev, const char *res, const json_t *obj, int64_t rv)
{
	struct dns_server *d = arg;
	(void)rv;
	if (strcmp(res, "services") == 0)
		track(d->svcs, ev, obj);
	else if (strcmp(res, "endpoints") == 0)
		track(d->eps, ev, obj);
}

static int
view_load(struct dns_server *d)
{
	static const char *const res[] = { "services", "endpoints" };
	struct store *st = api_store(d->api);
	for (size_t r = 0; r < ARRAY_SIZE(res); r++) {
		json_t *items = NULL, *o;
		size_t i;
		int rc = store_list(st, res[r], NULL, &items, NULL);
		if (rc < 0)
			return rc;
		json_array_foreach(items, i, o)
			track(r == 0 ? d->svcs : d->eps, STORE_ADDED, o);
		json_decref(items);
	}
	return store_watch_start(st, NULL, NULL, 0, on_event, d, &d->sw);
}

/* ---- answering ---------------------------------------------------------- */

/* The response in wire form, cut to max bytes (TC set, records dropped) for
 * UDP. NULL if it cannot be encoded. */
static uint8_t *
encode(ldns_pkt *r, size_t max, size_t *len)
{
	uint8_t *wire = NULL;
	if (ldns_pkt2wire(&wire, r, len) != LDNS_STATUS_OK)
		return NULL;
	if (*len <= max)
		return wire;
	free(wire);
	ldns_rr_list_deep_free(ldns_pkt_answer(r));
	ldns_pkt_set_answer(r, ldns_rr_list_new());
	ldns_pkt_set_ancount(r, 0);
	ldns_rr_list_deep_free(ldns_pkt_authority(r));
	ldns_pkt_set_authority(r, ldns_rr_list_new());
	ldns_pkt_set_nscount(r, 0);
	ldns_rr_list_deep_free(ldns_pkt_additional(r));
	ldns_pkt_set_additional(r, ldns_rr_list_new());
	ldns_pkt_set_arcount(r, 0);
	ldns_pkt_set_tc(r, true);
	if (ldns_pkt2wire(&wire, r, len) != LDNS_STATUS_OK)
		return NULL;
	return wire;
}

static size_t
udp_max(const ldns_pkt *q)
{
	size_t m = ldns_pkt_edns(q) ? ldns_pkt_edns_udp_size(q) : 512;
	return m < 512 ? 512 : m > 1232 ? 1232 : m;
}

static void
on_udp_sent(uv_udp_send_t *req, int status)
{
	(void)status;
	free(req->data);
	free(req);
}

static void
udp_send(struct dns_server *d, const struct sockaddr *to, uint8_t *wire, size_t len)
{
	if (d->stopping) {
		free(wire);
		return;
	}
	uv_udp_send_t *req = xmalloc(sizeof *req);
	uv_buf_t b = uv_buf_init((char *)wire, (unsigned)len);
	req->data = wire;
	if (uv_udp_send(req, &d->udp, &b, 1, to, on_udp_sent) < 0)
		on_udp_sent(req, -1);
}

static void tcp_send(struct tconn *c, uint8_t *wire, size_t len);
static void tconn_unref(struct tconn *c);

/* Sends r (freed) to the client of a UDP query (to) or a TCP one (tc). */
static void
reply(struct dns_server *d, ldns_pkt *r, const ldns_pkt *q, const struct sockaddr *to,
    struct tconn *tc)
{
	size_t len = 0;
	uint8_t *wire = encode(r, tc ? 65535 : udp_max(q), &len);
	ldns_pkt_free(r);
	if (!wire)
		return;
	if (tc)
		tcp_send(tc, wire, len);
	else
		udp_send(d, to, wire, len);
}

/* ---- forwarding ------------------------------------------------------- */

static void
fwd_closed(uv_handle_t *h)
{
	struct fwd *f = h->data;
	if (--f->open > 0)
		return;
	struct dns_server *d = f->d;
	if (f->tc)
		tconn_unref(f->tc);
	ldns_pkt_free(f->query);
	free(f);
	d->handles--;
	dns_free_if_done(d);
}

static void
fwd_finish(struct fwd *f, const uint8_t *wire, size_t len)
{
	struct dns_server *d = f->d;
	if (f->done)
		return;
	f->done = true;
	if (!d->stopping && !(f->tc && f->tc->closing)) {
		if (wire) {
			uint8_t *copy = xmalloc(len);
			memcpy(copy, wire, len);
			if (f->tc)
				tcp_send(f->tc, copy, len);
			else
				udp_send(d, (const struct sockaddr *)&f->client, copy, len);
		} else {
			d->failed++;
			reply(d, dns_reply_error(f->query, LDNS_RCODE_SERVFAIL), f->query,
			    (const struct sockaddr *)&f->client, f->tc);
		}
	}
	LIST_DEL(d->fwds, f);
	d->n_fwds--;
	uv_udp_recv_stop(&f->sock);
	uv_close((uv_handle_t *)&f->sock, fwd_closed);
	uv_close((uv_handle_t *)&f->timer, fwd_closed);
}

static void
fwd_timeout(uv_timer_t *t)
{
	fwd_finish(t->data, NULL, 0);
}

static void
fwd_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	(void)h;
	(void)hint;
	b->base = xmalloc(65536);
	b->len = 65536;
}

static void
fwd_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *b, const struct sockaddr *from,
    unsigned flags)
{
	struct fwd *f = h->data;
	(void)flags;
	/* only the upstream's answer to this id, from the upstream's address */
	if (n >= 12 && from && ldns_read_uint16(b->base) == ldns_pkt_id(f->query) &&
	    memcmp(from, &f->d->upstream, from->sa_family == AF_INET ?
	    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) == 0)
		fwd_finish(f, (const uint8_t *)b->base, (size_t)n);
	else if (n < 0)
		fwd_finish(f, NULL, 0);
	free(b->base);
}

static void
forward(struct dns_server *d, ldns_pkt *q, const uint8_t *wire, size_t len,
    const struct sockaddr *client, struct tconn *tc)
{
	if (!d->have_upstream || d->n_fwds >= FWD_MAX) {
		d->failed++;
		reply(d, dns_reply_error(q, LDNS_RCODE_SERVFAIL), q, client, tc);
		ldns_pkt_free(q);
		return;
	}
	struct fwd *f = xcalloc(1, sizeof *f);
	f->d = d;
	f->query = q;
	if (tc) {
		f->tc = tc;
		tc->refs++;
	} else {
		memcpy(&f->client, client, client->sa_family == AF_INET ?
		    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
	}
	uv_udp_init(d->loop, &f->sock);
	uv_timer_init(d->loop, &f->timer);
	f->sock.data = f->timer.data = f;
	f->open = 2;
	d->handles++;
	d->forwarded++;
	LIST_ADD(d->fwds, f);
	d->n_fwds++;
	uv_buf_t b = uv_buf_init((char *)wire, (unsigned)len);
	uv_timer_start(&f->timer, fwd_timeout, (uint64_t)d->timeout_ms, 0);
	/* a fresh socket per query: the kernel's random source port guards
	 * against spoofed answers along with the id */
	if (uv_udp_try_send(&f->sock, &b, 1, (const struct sockaddr *)&d->upstream) < 0 ||
	    uv_udp_recv_start(&f->sock, fwd_alloc, fwd_recv) < 0)
		fwd_finish(f, NULL, 0);
}

/* One query in wire form, from a UDP client (to) or a TCP one (tc). */
static void
handle(struct dns_server *d, const uint8_t *wire, size_t len, const struct sockaddr *to,
    struct tconn *tc)
{
	ldns_pkt *q = NULL;
	d->queries++;
	if (ldns_wire2pkt(&q, wire, len) != LDNS_STATUS_OK) {
		if (len >= 12 && !(wire[2] & 0x80)) {	/* a query we cannot read: FORMERR */
			uint8_t *e = xmalloc(12);
			memcpy(e, wire, 2);
			memset(e + 2, 0, 10);
			e[2] = 0x80 | (wire[2] & 0x79);	/* QR, opcode, RD */
			e[3] = LDNS_RCODE_FORMERR;
			if (tc)
				tcp_send(tc, e, 12);
			else
				udp_send(d, to, e, 12);
		}
		return;
	}
	if (ldns_pkt_qr(q)) {		/* a response: never answer one */
		ldns_pkt_free(q);
		return;
	}
	struct dns_view v = { d->svcs, d->eps, DNS_CLUSTER_DOMAIN };
	ldns_pkt *r = dns_answer(&v, q);
	if (!r) {
		forward(d, q, wire, len, to, tc);
		return;
	}
	reply(d, r, q, to, tc);
	ldns_pkt_free(q);
}

static void
udp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	(void)h;
	(void)hint;
	b->base = xmalloc(65536);
	b->len = 65536;
}

static void
udp_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *b, const struct sockaddr *from,
    unsigned flags)
{
	if (n > 0 && from && !(flags & UV_UDP_PARTIAL))
		handle(h->data, (const uint8_t *)b->base, (size_t)n, from, NULL);
	free(b->base);
}

/* ---- TCP ---------------------------------------------------------------- */

static void
tconn_closed(uv_handle_t *h)
{
	tconn_unref(h->data);
}

static void
tconn_unref(struct tconn *c)
{
	if (--c->refs > 0)
		return;
	struct dns_server *d = c->d;
	buf_free(&c->in);
	free(c);
	d->handles--;
	dns_free_if_done(d);
}

static void
tconn_close(struct tconn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	LIST_DEL(c->d->conns, c);
	c->d->n_conns--;
	uv_close((uv_handle_t *)&c->h, tconn_closed);
	uv_close((uv_handle_t *)&c->idle, tconn_closed);
}

static void
on_tcp_written(uv_write_t *req, int status)
{
	(void)status;
	free(req->data);
	free(req);
}

static void
tcp_send(struct tconn *c, uint8_t *wire, size_t len)
{
	if (c->closing || len > 65535) {
		free(wire);
		return;
	}
	uint8_t *framed = xmalloc(len + 2);
	ldns_write_uint16(framed, (uint16_t)len);
	memcpy(framed + 2, wire, len);
	free(wire);
	uv_write_t *req = xmalloc(sizeof *req);
	uv_buf_t b = uv_buf_init((char *)framed, (unsigned)len + 2);
	req->data = framed;
	if (uv_write(req, (uv_stream_t *)&c->h, &b, 1, on_tcp_written) < 0)
		on_tcp_written(req, -1);
}

static void
tconn_idle(uv_timer_t *t)
{
	tconn_close(t->data);
}

static void
tcp_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct tconn *c = s->data;
	if (n < 0) {
		free(b->base);
		tconn_close(c);
		return;
	}
	buf_append(&c->in, b->base, (size_t)n);
	free(b->base);
	uv_timer_again(&c->idle);
	size_t off = 0;
	while (!c->closing && c->in.len - off >= 2) {
		size_t ml = ldns_read_uint16(c->in.data + off);
		if (c->in.len - off - 2 < ml)
			break;
		handle(c->d, (const uint8_t *)c->in.data + off + 2, ml, NULL, c);
		off += 2 + ml;
	}
	if (off) {
		memmove(c->in.data, c->in.data + off, c->in.len - off);
		c->in.len -= off;
	}
}

static void
on_tcp_conn(uv_stream_t *srv, int status)
{
	struct dns_server *d = srv->data;
	if (status < 0)
		return;
	struct tconn *c = xcalloc(1, sizeof *c);
	c->d = d;
	uv_tcp_init(d->loop, &c->h);
	uv_timer_init(d->loop, &c->idle);
	c->h.data = c->idle.data = c;
	c->refs = 2;
	d->handles++;
	LIST_ADD(d->conns, c);
	d->n_conns++;
	if (uv_accept(srv, (uv_stream_t *)&c->h) < 0 || d->n_conns > TCP_MAX_CONNS ||
	    uv_read_start((uv_stream_t *)&c->h, udp_alloc, tcp_read) < 0) {
		tconn_close(c);
		return;
	}
	uv_timer_start(&c->idle, tconn_idle, TCP_IDLE_MS, TCP_IDLE_MS);
}

/* ---- start and stop ------------------------------------------------------- */

/* "IP", "IP:PORT", "[IPv6]:PORT" or "IPv6" -> addr (default port dflt). */
static int
parse_addr(const char *s, int dflt, struct sockaddr_storage *ss, char *ip, size_t iplen,
    int *port)
{
	char host[INET6_ADDRSTRLEN + 8];
	const char *colon = strrchr(s, ':');
	long p = dflt;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || (size_t)(close - s - 1) >= sizeof host)
			return -EINVAL;
		snprintf(host, sizeof host, "%.*s", (int)(close - s - 1), s + 1);
		colon = close[1] == ':' ? close + 1 : NULL;
	} else if (colon && strchr(s, ':') == colon) {
		snprintf(host, sizeof host, "%.*s", (int)(colon - s), s);
	} else {
		snprintf(host, sizeof host, "%s", s);
		colon = NULL;
	}
	if (colon) {
		char *end;
		p = strtol(colon + 1, &end, 10);
		if (*end || p < 1 || p > 65535)
			return -EINVAL;
	}
	memset(ss, 0, sizeof *ss);
	if (uv_ip4_addr(host, (int)p, (struct sockaddr_in *)ss) < 0 &&
	    uv_ip6_addr(host, (int)p, (struct sockaddr_in6 *)ss) < 0)
		return -EINVAL;
	if (ip)
		snprintf(ip, iplen, "%s", host);
	if (port)
		*port = (int)p;
	return 0;
}

/* The first nameserver of /etc/resolv.conf that is not us. */
static bool
upstream_from_resolv_conf(struct dns_server *d)
{
	char *text = NULL;
	size_t len;
	bool found = false;
	if (file_read_all("/etc/resolv.conf", &text, &len) < 0)
		return false;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line && !found;
	    line = strtok_r(NULL, "\n", &save)) {
		char ip[INET6_ADDRSTRLEN + 1];
		if (sscanf(line, " nameserver %46s", ip) == 1 && strcmp(ip, d->ip) != 0)
			found = parse_addr(ip, 53, &d->upstream, NULL, 0, NULL) == 0;
	}
	free(text);
	return found;
}

/* kube-system/kube-dns, as clusters have it: the DNS address as its
 * cluster IP when that is in the Service range (the allocator says). Only
 * the UDP port is listed: the proxy serves every TCP port of a Service, and
 * here the DNS server itself holds ADDR:53 for TCP. */
static void
kube_dns_service(struct dns_server *d)
{
	json_t *have = NULL;
	if (store_get(api_store(d->api), "services", "kube-system", "kube-dns", &have) == 0) {
		if (strcmp(obj_str(obj_get_path(have, "spec"), "clusterIP"), d->ip) != 0)
			log_warn("dns", "the kube-dns Service has cluster IP %s, not %s: pods "
			    "use %s", obj_str(obj_get_path(have, "spec"), "clusterIP"), d->ip, d->ip);
		json_decref(have);
		return;
	}
	const struct kind *k = kind_find_gvk("v1", "Service");
	json_t *svc = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s}}, s:{s:s, s:[{s:s, "
	    "s:i, s:s, s:i}]}}", "apiVersion", "v1", "kind", "Service", "metadata", "name",
	    "kube-dns", "namespace", "kube-system", "labels", "k8s-app", "kube-dns",
	    "kubernetes.io/name", "V6DNS", "spec", "clusterIP", d->ip, "ports", "name", "dns",
	    "port", d->port, "protocol", "UDP", "targetPort", d->port);
	struct api_error err = { 0 };
	if (api_create(d->api, k, "kube-system", svc, 0, NULL, &err) < 0)
		log_info("dns", "no kube-dns Service for %s: %s", d->ip, err.message);
	api_error_clear(&err);
}

int
dns_server_start(struct api *api, const struct dns_config *cfg, struct dns_server **out)
{
	struct dns_server *d = xcalloc(1, sizeof *d);
	struct sockaddr_storage addr;
	int rc;
	d->api = api;
	d->loop = api_loop(api);
	d->svcs = json_object();
	d->eps = json_object();
	d->timeout_ms = cfg->upstream_timeout_ms > 0 ? cfg->upstream_timeout_ms : 2000;
	uv_udp_init(d->loop, &d->udp);
	uv_tcp_init(d->loop, &d->tcp);
	d->udp.data = d->tcp.data = d;
	d->handles = 2;
	if ((rc = parse_addr(cfg->listen, 53, &addr, d->ip, sizeof d->ip, &d->port)) < 0) {
		log_error("dns", "--cluster-dns: expected IP or IP:PORT, got \"%s\"", cfg->listen);
		goto fail;
	}
	if (cfg->upstream)
		d->have_upstream = parse_addr(cfg->upstream, 53, &d->upstream, NULL, 0, NULL) == 0;
	else
		d->have_upstream = upstream_from_resolv_conf(d);
	if (cfg->upstream && !d->have_upstream) {
		log_error("dns", "--dns-upstream: expected IP or IP:PORT, got \"%s\"", cfg->upstream);
		rc = -EINVAL;
		goto fail;
	}
	if ((rc = uv_udp_bind(&d->udp, (const struct sockaddr *)&addr, 0)) < 0 ||
	    (rc = uv_tcp_bind(&d->tcp, (const struct sockaddr *)&addr, 0)) < 0 ||
	    (rc = uv_listen((uv_stream_t *)&d->tcp, 64, on_tcp_conn)) < 0 ||
	    (rc = uv_udp_recv_start(&d->udp, udp_alloc, udp_recv)) < 0) {
		log_error("dns", "listening on %s: %s", cfg->listen, uv_strerror(rc));
		goto fail;
	}
	if ((rc = view_load(d)) < 0)
		goto fail;
	kube_dns_service(d);
	log_info("dns", "cluster DNS on %s:%d (udp, tcp) for %s, upstream %s", d->ip, d->port,
	    DNS_CLUSTER_DOMAIN, d->have_upstream ? (cfg->upstream ? cfg->upstream :
	    "from /etc/resolv.conf") : "none (SERVFAIL)");
	*out = d;
	return 0;
fail:
	dns_server_stop(d);
	return rc;
}

const char *
dns_server_ip(const struct dns_server *d)
{
	return d ? d->ip : NULL;
}

static void
dns_free_if_done(struct dns_server *d)
{
	if (!d->stopping || d->handles > 0)
		return;
	json_decref(d->svcs);
	json_decref(d->eps);
	free(d);
}

static void
srv_closed(uv_handle_t *h)
{
	struct dns_server *d = h->data;
	d->handles--;
	dns_free_if_done(d);
}

void
dns_server_stop(struct dns_server *d)
{
	if (!d)
		return;
	log_info("dns", "stopping: %llu queries, %llu forwarded, %llu failed",
	    (unsigned long long)d->queries, (unsigned long long)d->forwarded,
	    (unsigned long long)d->failed);
	d->stopping = true;
	if (d->sw)
		store_watch_stop(d->sw);
	d->sw = NULL;
	while (d->fwds)
		fwd_finish(d->fwds, NULL, 0);
	while (d->conns)
		tconn_close(d->conns);
	uv_close((uv_handle_t *)&d->udp, srv_closed);
	uv_close((uv_handle_t *)&d->tcp, srv_closed);
}
