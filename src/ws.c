/* ws.c — the server side of WebSocket (RFC 6455) over http.c's upgraded
 * requests (TLS or not): the 101 handshake, reading the client's frames
 * (masked, possibly fragmented, pings answered), writing unmasked binary
 * messages, the close handshake. Owns the request from ws_open to ws_end.
 * Called by node_exec.c and node_portforward.c. */
#include "ws.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "util.h"

/* A message larger than this closes the connection (1009). */
#define WS_MAX_MESSAGE	(16u << 20)

enum { OP_CONT = 0x0, OP_TEXT = 0x1, OP_BINARY = 0x2, OP_CLOSE = 0x8, OP_PING = 0x9,
	OP_PONG = 0xa };

struct ws {
	struct http_req *req;
	const struct ws_ops *ops;
	void *arg;
	struct buf in;			/* bytes not yet a whole frame */
	struct buf msg;			/* fragments of the message being read */
	bool in_msg;			/* a fragmented message is open */
	bool closed;			/* ops->closed ran (or is not to run) */
	bool close_sent;
	bool busy;			/* inside on_bytes: ws_end defers the free */
	bool ended;			/* ws_end ran */
	void (*drain_cb)(void *);
	void *drain_arg;
};

bool
ws_wanted(const struct http_req *req)
{
	const char *up = http_req_header(req, "Upgrade");
	return req->upgrade && up && strcasecmp(up, "websocket") == 0;
}

const char *
ws_pick(const struct http_req *req, const char *const *ours, size_t n)
{
	const char *offered = http_req_header(req, "Sec-WebSocket-Protocol");
	while (offered && *offered) {
		offered += strspn(offered, " ,");
		size_t len = strcspn(offered, " ,");
		for (size_t i = 0; len && i < n; i++)
			if (strlen(ours[i]) == len && strncmp(offered, ours[i], len) == 0)
				return ours[i];
		offered += len;
	}
	return NULL;
}

void
ws_refuse(struct http_req *req, const char *why)
{
	char *msg = xasprintf("unable to upgrade connection: %s", why);
	json_t *st = json_pack("{s:s, s:s, s:{}, s:s, s:s, s:s, s:i}", "kind", "Status",
	    "apiVersion", "v1", "metadata", "status", "Failure", "message", msg, "reason",
	    "BadRequest", "code", 400);
	char *body = json_dumps(st, JSON_COMPACT);
	http_respond(req, 400, "application/json", body, strlen(body));
	free(body);
	json_decref(st);
	free(msg);
}

int
ws_parse_head(const unsigned char *p, size_t avail, struct ws_head *h)
{
	size_t n = 2;
	if (avail < 2)
		return -EAGAIN;
	h->op = p[0] & 0x0f;
	h->fin = p[0] & 0x80;
	h->len = p[1] & 0x7f;
	if (h->len == 126) {
		if (avail < 4)
			return -EAGAIN;
		h->len = (uint64_t)p[2] << 8 | p[3];
		n = 4;
	} else if (h->len == 127) {
		if (avail < 10)
			return -EAGAIN;
		h->len = 0;
		for (int i = 0; i < 8; i++)
			h->len = h->len << 8 | p[2 + i];
		n = 10;
	}
	h->mask = p[1] & 0x80 ? p + n : NULL;
	h->size = n + (h->mask ? 4 : 0);
	return avail < h->size ? -EAGAIN : 0;
}

size_t
ws_make_head(unsigned char *h, int op, uint64_t plen, const unsigned char *key)
{
	size_t n = 0;
	unsigned char m = key ? 0x80 : 0;
	h[n++] = (unsigned char)(0x80 | op);
	if (plen < 126) {
		h[n++] = (unsigned char)(m | plen);
	} else if (plen <= 0xffff) {
		h[n++] = m | 126;
		h[n++] = (unsigned char)(plen >> 8);
		h[n++] = (unsigned char)plen;
	} else {
		h[n++] = m | 127;
		for (int i = 7; i >= 0; i--)
			h[n++] = (unsigned char)(plen >> (8 * i));
	}
	if (key) {
		memcpy(h + n, key, 4);
		n += 4;
	}
	return n;
}

/* One unmasked frame of opcode op: [ch] then data (ch < 0: data alone). */
static int
send_frame(struct ws *w, int op, int ch, const char *data, size_t len)
{
	unsigned char h[15];
	size_t n = ws_make_head(h, op, len + (ch >= 0), NULL);
	if (ch >= 0)
		h[n++] = (unsigned char)ch;
	uv_buf_t b[2] = { uv_buf_init((char *)h, (unsigned)n),
		uv_buf_init((char *)data, (unsigned)len) };
	if (http_req_aborted(w->req))
		return -EPIPE;
	return http_raw_write(w->req, b, len ? 2 : 1);
}

int
ws_send(struct ws *w, int ch, const char *data, size_t len)
{
	if (w->close_sent)
		return -EPIPE;
	return send_frame(w, OP_BINARY, ch, data, len);
}

size_t
ws_pending(const struct ws *w)
{
	return http_stream_pending(w->req);
}

static void
on_drain(struct http_req *req, void *arg)
{
	struct ws *w = arg;
	(void)req;
	if (w->drain_cb)
		w->drain_cb(w->drain_arg);
}

void
ws_on_drain(struct ws *w, void (*cb)(void *), void *arg)
{
	w->drain_cb = cb;
	w->drain_arg = arg;
}

void
ws_pause(struct ws *w, bool pause)
{
	if (!w->closed)
		http_req_tunnel_pause(w->req, pause);
}

static void
gone(struct ws *w)
{
	if (w->closed)
		return;
	w->closed = true;
	http_req_tunnel_pause(w->req, true);
	w->ops->closed(w, w->arg);
}

/* A complete frame: control frames answered here, data handed on whole. */
static void
frame(struct ws *w, int op, bool fin, char *p, size_t len)
{
	switch (op) {
	case OP_PING:
		send_frame(w, OP_PONG, -1, p, len);
		return;
	case OP_PONG:
		return;
	case OP_CLOSE:
		if (!w->close_sent) {
			w->close_sent = true;
			send_frame(w, OP_CLOSE, -1, len >= 2 ? p : "\x03\xe8", 2);
		}
		gone(w);
		return;
	case OP_CONT:
	case OP_TEXT:
	case OP_BINARY:
		if ((op == OP_CONT) != w->in_msg) {
			gone(w);	/* a protocol error: continuation out of place */
			return;
		}
		if (fin && !w->in_msg) {
			w->ops->message(w, p, len, w->arg);
			return;
		}
		buf_append(&w->msg, p, len);
		w->in_msg = !fin;
		if (fin) {
			w->ops->message(w, w->msg.data, w->msg.len, w->arg);
			buf_reset(&w->msg);
		}
		return;
	default:
		gone(w);
	}
}

static void
ws_free(struct ws *w)
{
	buf_free(&w->in);
	buf_free(&w->msg);
	free(w);
}

static void
on_bytes(struct http_req *req, const char *data, size_t len, void *arg)
{
	struct ws *w = arg;
	(void)req;
	if (w->ended)
		return;
	w->busy = true;
	buf_append(&w->in, data, len);
	size_t off = 0;
	unsigned char *b = (unsigned char *)w->in.data;
	struct ws_head h;
	while (!w->closed && !w->ended &&
	    ws_parse_head(b + off, w->in.len - off, &h) == 0) {
		if (h.len > WS_MAX_MESSAGE || w->msg.len + h.len > WS_MAX_MESSAGE) {
			gone(w);
			break;
		}
		if (w->in.len - off - h.size < h.len)
			break;
		char *p = (char *)b + off + h.size;
		for (size_t i = 0; h.mask && i < h.len; i++)
			p[i] ^= (char)h.mask[i & 3];
		off += h.size + (size_t)h.len;
		frame(w, h.op, h.fin, p, (size_t)h.len);
	}
	w->busy = false;
	if (w->ended) {
		ws_free(w);
		return;
	}
	if (w->closed) {
		buf_reset(&w->in);
		return;
	}
	memmove(w->in.data, w->in.data + off, w->in.len - off);
	w->in.len -= off;
}

static void
on_abort(struct http_req *req, void *arg)
{
	(void)req;
	gone(arg);
}

struct ws *
ws_open(struct http_req *req, const char *proto, const struct ws_ops *ops, void *arg)
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	const char *key = http_req_header(req, "Sec-WebSocket-Key");
	unsigned char digest[SHA_DIGEST_LENGTH];
	char accept[64];
	if (!key || strlen(key) > 64) {
		ws_refuse(req, "a WebSocket key (Sec-WebSocket-Key) is required");
		return NULL;
	}
	char *in = xasprintf("%s%s", key, guid);
	SHA1((const unsigned char *)in, strlen(in), digest);
	EVP_EncodeBlock((unsigned char *)accept, digest, SHA_DIGEST_LENGTH);
	free(in);
	char *head = xasprintf("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: %s"
	    "\r\n\r\n", accept, proto);
	uv_buf_t b = uv_buf_init(head, (unsigned)strlen(head));
	struct ws *w = xcalloc(1, sizeof *w);
	w->req = req;
	w->ops = ops;
	w->arg = arg;
	http_raw_write(req, &b, 1);
	free(head);
	http_req_on_abort(req, on_abort, w);
	http_req_on_drain(req, on_drain, w);
	if (!http_req_aborted(req))
		http_req_tunnel(req, on_bytes, w);
	return w;
}

void
ws_end(struct ws *w)
{
	if (!w->close_sent && !http_req_aborted(w->req)) {
		w->close_sent = true;
		send_frame(w, OP_CLOSE, -1, "\x03\xe8", 2);	/* 1000, normal */
	}
	w->ended = true;
	w->closed = true;
	http_raw_end(w->req, false);
	if (!w->busy)
		ws_free(w);
}
