/* node_portforward.c — pods/portforward: kubectl port-forward's SPDY/3.1
 * session (spdy.c), tunnelled in a WebSocket (subprotocol
 * SPDY/3.1+portforward.k8s.io, kubectl's default since 1.31) or plain after
 * `Upgrade: SPDY/3.1` (its fallback). Each forwarded connection is a pair
 * of streams with the same requestid: "error" (a message, then the end)
 * and "data" (bytes both ways). The kubelet's WebSocket form
 * (v4.channel.k8s.io, ?ports=P1,P2: one connection per port on channels
 * 2i data and 2i+1 error, each opened by the port in 2 little-endian bytes;
 * v6 port-forward and the client libraries use it) is served too. Either
 * way a connection is joined to a TCP connection to the port in the pod: 127.0.0.1 inside the pod's network namespace for a pod on the
 * pod network (setns around socket()), the pod's own loopback address for
 * a process pod. Called by node_agent.c. */
#include "node_pod.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "http.h"
#include "log.h"
#include "net.h"
#include "spdy.h"
#include "util.h"
#include "ws.h"

#define PF_PROTO	"portforward.k8s.io"
#define PF_WS_PROTO	"SPDY/3.1+" PF_PROTO
#define PF_V4_PROTO	"v4.channel.k8s.io"
#define PF_MAX_PORTS	16
/* bytes queued one way past which the other side is not read */
#define PF_HIGH		(1u << 20)

struct pf;

/* One forwarded connection: a requestid's two streams and its socket. */
struct pf_conn {
	struct pf_conn *next;
	struct pf *pf;
	char *reqid;
	int port;
	uint32_t err_id, data_id;
	uv_tcp_t tcp;
	uv_connect_t connect;
	bool tcp_open;			/* tcp initialised (closed through on_tcp_closed) */
	bool connected, tcp_eof, client_fin, shut, done, paused;
	struct buf early;		/* client bytes before the connect finished */
	unsigned writes;		/* writes to the pod in flight (net_send) */
};

struct pf {
	struct http_req *req;
	struct ws *ws;			/* the tunnel, or NULL for plain SPDY */
	struct spdy *spdy;
	uv_loop_t *loop;
	char *netns;			/* NULL: connect to ip */
	char ip[16];
	char *pod;
	struct pf_conn *conns;
	int refs;			/* the session + open sockets */
	bool ending;
	bool client_paused;
	bool v4;			/* v4.channel.k8s.io: ids are channels */
};

static void pf_unref(struct pf *pf);
static void pf_end(struct pf *pf);
static void conn_finish(struct pf_conn *c);

/* ---- transport --------------------------------------------------------- */

static void
on_spdy_write(void *arg, const char *data, size_t len)
{
	struct pf *pf = arg;
	if (pf->ending)
		return;
	if (pf->ws) {
		ws_send(pf->ws, -1, data, len);
	} else if (!http_req_aborted(pf->req)) {
		uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
		http_raw_write(pf->req, &b, 1);
	}
}

static size_t
client_pending(const struct pf *pf)
{
	if (pf->ending)
		return 0;
	return pf->ws ? ws_pending(pf->ws) : http_stream_pending(pf->req);
}

static void
client_pause(struct pf *pf, bool pause)
{
	if (pf->ending || pf->client_paused == pause)
		return;
	pf->client_paused = pause;
	if (pf->ws)
		ws_pause(pf->ws, pause);
	else
		http_req_tunnel_pause(pf->req, pause);
}

/* The session ends: every connection is closed, the request finished. */
static void
pf_end(struct pf *pf)
{
	if (pf->ending)
		return;
	pf->ending = true;
	for (struct pf_conn *c = pf->conns; c; c = c->next)
		conn_finish(c);
	if (pf->ws)
		ws_end(pf->ws);
	else
		http_raw_end(pf->req, false);
	pf->ws = NULL;
	pf->req = NULL;
	pf_unref(pf);
}

static void
pf_unref(struct pf *pf)
{
	if (--pf->refs > 0)
		return;
	while (pf->conns) {
		struct pf_conn *c = pf->conns;
		pf->conns = c->next;
		buf_free(&c->early);
		free(c->reqid);
		free(c);
	}
	spdy_free(pf->spdy);
	free(pf->netns);
	free(pf->pod);
	free(pf);
}

/* ---- one connection ----------------------------------------------------- */

static void
on_tcp_closed(uv_handle_t *h)
{
	struct pf_conn *c = h->data;
	pf_unref(c->pf);
}

/* Closes c's socket; c stays listed (its streams' ids are known to the
 * client) until the session ends. */
static void
conn_finish(struct pf_conn *c)
{
	if (c->done)
		return;
	c->done = true;
	if (c->tcp_open && !uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
}

/* Bytes (or the end, fin) to the client on c's data or error stream. A
 * v4 WebSocket has no half-close: the session ends with its last
 * connection instead. */
static void
to_client(struct pf_conn *c, bool err, const char *data, size_t len, bool fin)
{
	struct pf *pf = c->pf;
	uint32_t id = err ? c->err_id : c->data_id;
	if (pf->ending)
		return;
	if (!pf->v4)
		spdy_data(pf->spdy, id, data, len, fin);
	else if (len)
		ws_send(pf->ws, (int)id, data, len);
}

/* v4: the session ends once every connection did. */
static void
v4_maybe_end(struct pf *pf)
{
	for (struct pf_conn *c = pf->conns; c; c = c->next)
		if (!c->done)
			return;
	if (pf->v4)
		pf_end(pf);
}

/* Reports on the error stream (kubectl prints it), ends both streams. */
static void
conn_error(struct pf_conn *c, const char *detail)
{
	struct pf *pf = c->pf;
	char msg[512];
	snprintf(msg, sizeof msg, "error forwarding port %d to pod %s: failed to connect to "
	    "the port inside the pod: %s", c->port, pf->pod, detail);
	if (c->err_id)
		to_client(c, true, msg, strlen(msg), true);
	if (c->data_id || pf->v4)
		to_client(c, false, NULL, 0, true);
	conn_finish(c);
	v4_maybe_end(pf);
}

static void
on_alloc(uv_handle_t *h, size_t size, uv_buf_t *b)
{
	(void)h;
	b->base = xmalloc(size);
	b->len = size;
}

static void pf_resume_reads(struct pf *pf);

static void
on_tcp_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct pf_conn *c = s->data;
	struct pf *pf = c->pf;
	if (n > 0)
		to_client(c, false, b->base, (size_t)n, false);
	free(b->base);
	if (n < 0) {
		/* the pod's side is done: our halves of both streams end */
		uv_read_stop(s);
		c->tcp_eof = true;
		to_client(c, false, NULL, 0, true);
		if (c->err_id)
			to_client(c, true, NULL, 0, true);
		if (n != UV_EOF || c->client_fin || pf->v4)
			conn_finish(c);
		v4_maybe_end(pf);
	} else if (client_pending(pf) > PF_HIGH) {
		uv_read_stop(s);
		c->paused = true;
	}
}

static void
pf_resume_reads(struct pf *pf)
{
	for (struct pf_conn *c = pf->conns; c; c = c->next)
		if (c->paused && !c->done && !c->tcp_eof) {
			c->paused = false;
			uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_tcp_read);
		}
}

static void
on_client_drained(void *arg)
{
	pf_resume_reads(arg);
}

static void
on_client_drained_req(struct http_req *req, void *arg)
{
	(void)req;
	pf_resume_reads(arg);
}

/* Client bytes queued to the pods. */
static size_t
pf_queued(const struct pf *pf)
{
	size_t q = 0;
	for (const struct pf_conn *c = pf->conns; c; c = c->next)
		if (c->connected && !c->done)
			q += uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp);
	return q;
}

static void
on_tcp_written(uv_write_t *req, int status)
{
	struct net_write *w = (struct net_write *)req;
	struct pf_conn *c = w->owner;
	struct pf *pf = c->pf;
	(void)status;
	free(w);
	c->writes--;
	if (pf_queued(pf) < PF_HIGH / 2)
		client_pause(pf, false);
	pf_unref(pf);
}

static void
on_shutdown(uv_shutdown_t *sr, int status)
{
	struct pf_conn *c = sr->data;
	struct pf *pf = c->pf;
	(void)status;
	free(sr);
	if (c->tcp_eof)
		conn_finish(c);
	pf_unref(pf);
}

/* The client's half of the data stream ended: half-close to the pod
 * once what is queued is written. */
static void
conn_shutdown(struct pf_conn *c)
{
	if (c->shut || c->done || !c->connected)
		return;
	c->shut = true;
	uv_shutdown_t *sr = xmalloc(sizeof *sr);
	sr->data = c;
	if (uv_shutdown(sr, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
		free(sr);
		conn_finish(c);
		return;
	}
	c->pf->refs++;
}

static void
conn_write(struct pf_conn *c, const char *data, size_t len)
{
	struct pf *pf = c->pf;
	if (c->done || len == 0)
		return;
	if (!c->connected) {
		buf_append(&c->early, data, len);
		return;
	}
	uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
	unsigned before = c->writes;
	if (net_send((uv_stream_t *)&c->tcp, &b, 1, &c->writes, on_tcp_written, c, 0) < 0) {
		conn_finish(c);
		return;
	}
	pf->refs += (int)(c->writes - before);	/* a queued write holds pf */
	if (pf_queued(pf) > PF_HIGH)
		client_pause(pf, true);
}

static void
on_connected(uv_connect_t *cr, int status)
{
	struct pf_conn *c = cr->data;
	struct pf *pf = c->pf;
	if (c->done) {
		pf_unref(pf);
		return;
	}
	if (status < 0) {
		conn_error(c, uv_strerror(status));
		pf_unref(pf);
		return;
	}
	c->connected = true;
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_tcp_read);
	if (c->early.len) {
		struct buf e = c->early;
		c->early = (struct buf)BUF_INIT;
		conn_write(c, e.data, e.len);
		buf_free(&e);
	}
	if (c->client_fin)
		conn_shutdown(c);
	pf_unref(pf);
}

/* A socket in the pod's network namespace (setns there and back: the
 * socket keeps the namespace it was made in). Returns an fd or -errno. */
static int
socket_in(const char *netns)
{
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), fd = -1, e = 0;
	int target = open(netns, O_RDONLY | O_CLOEXEC);
	if (self < 0 || target < 0) {
		e = errno;
		goto out;
	}
	if (setns(target, CLONE_NEWNET) < 0) {
		e = errno;
		goto out;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	e = fd < 0 ? errno : 0;
	if (setns(self, CLONE_NEWNET) < 0) {
		/* the server's own sockets would land in the pod: fatal */
		log_error("portforward", "cannot return to the host network namespace: %s",
		    strerror(errno));
		abort();
	}
out:
	if (self >= 0)
		close(self);
	if (target >= 0)
		close(target);
	return fd >= 0 ? fd : -(e ? e : EIO);
}

static void
conn_dial(struct pf_conn *c)
{
	struct pf *pf = c->pf;
	if (c->done || pf->ending)
		return;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)c->port) };
	inet_pton(AF_INET, pf->netns ? "127.0.0.1" : pf->ip, &sa.sin_addr);
	uv_tcp_init(pf->loop, &c->tcp);
	c->tcp.data = c;
	c->tcp_open = true;
	pf->refs++;			/* released by on_tcp_closed */
	int rc = 0;
	if (pf->netns) {
		int fd = socket_in(pf->netns);
		rc = fd < 0 ? uv_translate_sys_error(-fd) : uv_tcp_open(&c->tcp, fd);
		if (fd >= 0 && rc < 0)
			close(fd);
	}
	c->connect.data = c;
	if (rc == 0)
		rc = uv_tcp_connect(&c->connect, &c->tcp, (struct sockaddr *)&sa, on_connected);
	if (rc < 0) {
		conn_error(c, uv_strerror(rc));
		return;
	}
	pf->refs++;			/* released by on_connected */
}

/* ---- the SPDY session --------------------------------------------------- */

static const char *
header(const struct spdy_header *h, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(h[i].name, name) == 0)
			return h[i].value;
	return NULL;
}

static struct pf_conn *
conn_by_stream(struct pf *pf, uint32_t id)
{
	for (struct pf_conn *c = pf->conns; c; c = c->next)
		if (c->err_id == id || c->data_id == id)
			return c;
	return NULL;
}

static void
on_stream(struct spdy *s, uint32_t id, const struct spdy_header *h, size_t n, void *arg)
{
	struct pf *pf = arg;
	const char *type = header(h, n, "streamtype"), *port = header(h, n, "port");
	const char *reqid = header(h, n, "requestid");
	char *end = NULL;
	long p = port ? strtol(port, &end, 10) : 0;
	bool data = type && strcmp(type, "data") == 0;
	if (!type || (!data && strcmp(type, "error") != 0) || !end || *end || p < 1 ||
	    p > 65535) {
		spdy_reset(s, id, 1);
		return;
	}
	struct pf_conn *c = NULL;
	for (c = pf->conns; reqid && c; c = c->next)
		if (c->reqid && strcmp(c->reqid, reqid) == 0)
			break;
	if (!c) {
		c = xcalloc(1, sizeof *c);
		c->pf = pf;
		c->reqid = reqid ? xstrdup(reqid) : NULL;
		c->port = (int)p;
		c->next = pf->conns;
		pf->conns = c;
	}
	spdy_reply(s, id, false);
	if (!data) {
		c->err_id = id;
		return;
	}
	c->data_id = id;
	conn_dial(c);
}

static void
on_data(struct spdy *s, uint32_t id, const char *data, size_t len, bool fin, void *arg)
{
	struct pf *pf = arg;
	struct pf_conn *c = conn_by_stream(pf, id);
	(void)s;
	if (!c || id != c->data_id)
		return;			/* the error stream's end, or unknown */
	conn_write(c, data, len);
	if (fin) {
		c->client_fin = true;
		conn_shutdown(c);
	}
}

static void
on_reset(struct spdy *s, uint32_t id, void *arg)
{
	struct pf_conn *c = conn_by_stream(arg, id);
	(void)s;
	if (c && id == c->data_id)
		conn_finish(c);
}

static const struct spdy_ops pf_spdy_ops = { on_spdy_write, on_stream, on_data, on_reset };

static void
on_ws_message(struct ws *w, const char *data, size_t len, void *arg)
{
	struct pf *pf = arg;
	(void)w;
	if (pf->ending)
		return;
	if (!pf->v4) {
		if (spdy_input(pf->spdy, data, len) < 0)
			pf_end(pf);
		return;
	}
	/* [channel][bytes]: data channels are even */
	struct pf_conn *c = len ? conn_by_stream(pf, (unsigned char)data[0]) : NULL;
	if (c && c->data_id == (unsigned char)data[0])
		conn_write(c, data + 1, len - 1);
}

static const struct ws_ops pf_ws_ops;

/* v4: a connection per port of ?ports=, each channel opened by its port
 * (2 bytes, little-endian). Returns 0, or -1 with req refused. */
static int
v4_open(struct pf *pf, struct http_req *req, const char *proto)
{
	char *ports = http_query_get(req->query, "ports");
	int n = 0, list[PF_MAX_PORTS];
	for (char *p = ports, *end; p && *p && n < PF_MAX_PORTS; p = end + (*end == ',')) {
		long v = strtol(p, &end, 10);
		if (end == p || (*end && *end != ',') || v < 1 || v > 65535) {
			n = -1;
			break;
		}
		list[n++] = (int)v;
	}
	free(ports);
	if (n <= 0) {
		ws_refuse(req, "query parameter \"ports\" is required: ?ports=PORT[,PORT...]");
		return -1;
	}
	pf->v4 = true;
	pf->ws = ws_open(req, proto, &pf_ws_ops, pf);
	if (!pf->ws)
		return -1;
	for (int i = n - 1; i >= 0; i--) {
		struct pf_conn *c = xcalloc(1, sizeof *c);
		c->pf = pf;
		c->port = list[i];
		c->data_id = (uint32_t)(2 * i);
		c->err_id = (uint32_t)(2 * i + 1);
		c->next = pf->conns;
		pf->conns = c;
	}
	for (struct pf_conn *c = pf->conns; c; c = c->next) {
		unsigned char port[2] = { (unsigned char)c->port, (unsigned char)(c->port >> 8) };
		ws_send(pf->ws, (int)c->data_id, (const char *)port, 2);
		ws_send(pf->ws, (int)c->err_id, (const char *)port, 2);
	}
	for (struct pf_conn *c = pf->conns; c; c = c->next)
		conn_dial(c);
	return 0;
}

static void
on_ws_closed(struct ws *w, void *arg)
{
	(void)w;
	pf_end(arg);
}

static const struct ws_ops pf_ws_ops = { on_ws_message, on_ws_closed };

static void
on_tunnel(struct http_req *req, const char *data, size_t len, void *arg)
{
	struct pf *pf = arg;
	(void)req;
	if (!pf->ending && spdy_input(pf->spdy, data, len) < 0)
		pf_end(pf);
}

static void
on_abort(struct http_req *req, void *arg)
{
	(void)req;
	pf_end(arg);
}

int
npf_start(uv_loop_t *loop, struct http_req *req, const char *pod, const char *netns,
    const char *ip)
{
	static const char *const ours[] = { PF_WS_PROTO, PF_V4_PROTO };
	const char *up = http_req_header(req, "Upgrade");
	const char *proto = NULL;
	bool ws = ws_wanted(req);
	if (ws && !(proto = ws_pick(req, ours, ARRAY_SIZE(ours)))) {
		ws_refuse(req, "v6 serves port-forward over WebSocket with the subprotocols "
		    PF_WS_PROTO " (kubectl 1.31 or later) or " PF_V4_PROTO ", or over SPDY/3.1");
		return 0;
	}
	if (!ws && (!req->upgrade || !up || strcasecmp(up, "SPDY/3.1") != 0)) {
		ws_refuse(req, "port-forward needs an upgrade to WebSocket (" PF_WS_PROTO
		    ") or SPDY/3.1");
		return 0;
	}
	struct pf *pf = xcalloc(1, sizeof *pf);
	pf->loop = loop;
	pf->req = req;
	pf->refs = 1;
	pf->pod = xstrdup(pod);
	pf->netns = netns ? xstrdup(netns) : NULL;
	snprintf(pf->ip, sizeof pf->ip, "%s", ip ? ip : "127.0.0.1");
	pf->spdy = spdy_new(&pf_spdy_ops, pf);
	if (ws && strcmp(proto, PF_V4_PROTO) == 0) {
		if (v4_open(pf, req, proto) < 0) {
			pf->ending = true;
			pf_unref(pf);
			return 0;
		}
		ws_on_drain(pf->ws, on_client_drained, pf);
		return 0;
	}
	if (ws) {
		pf->ws = ws_open(req, proto, &pf_ws_ops, pf);
		if (!pf->ws) {
			pf->ending = true;
			pf_unref(pf);
			return 0;
		}
		ws_on_drain(pf->ws, on_client_drained, pf);
		return 0;
	}
	static const char head[] = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
	    "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: " PF_PROTO "\r\n\r\n";
	uv_buf_t b = uv_buf_init((char *)head, sizeof head - 1);
	http_raw_write(req, &b, 1);
	http_req_on_abort(req, on_abort, pf);
	http_req_on_drain(req, on_client_drained_req, pf);
	if (!http_req_aborted(req))
		http_req_tunnel(req, on_tunnel, pf);
	return 0;
}
